"""Values the databases refuse, found before a row is queued rather than by a failed batch.

PostgreSQL refuses NaN and infinities in JSON ("Token NaN is invalid"), NUL in text, and
text that is not UTF-8 (a lone surrogate). Python refuses to write an integer of more than
4,300 digits as JSON, or to take to UTC a moment its offset carries out of the years 1 to
9999 (year 1 at +14:00), before either database sees it. SQLite stores most of these, so
checking here also keeps the two backends alike. Each check returns what is wrong, naming
where, or None.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

#: Deepest JSON nesting accepted: PostgreSQL parses JSON recursively and stops at its stack
#: limit; nothing accessd stores nests more than a few levels.
MAX_DEPTH = 16
#: Largest JSON document accepted, in bytes: a panel's whole payload is at most 64 KiB.
MAX_JSON_BYTES = 64 * 1024


def text_problem(value: str, where: str) -> str | None:
    """What a text column or JSON string would refuse in ``value``."""
    if "\x00" in value:
        return f"{where}: holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{where}: is not valid Unicode (a lone surrogate)"
    return None


def moment_problem(value: datetime, where: str) -> str | None:
    """Whether ``value`` can be stored as a UTC timestamp."""
    if value.tzinfo is None:
        return f"{where}: has no offset"
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"{where}: falls outside the years 1 to 9999 in UTC"
    return None


def json_problem(value: object, where: str) -> str | None:
    """What a JSON column would refuse in ``value`` (a dict, list or scalar)."""
    problem = _json_problem(value, where, 0)
    if problem is not None:
        return problem
    size = len(json.dumps(value))
    if size > MAX_JSON_BYTES:
        return f"{where}: {size} bytes of JSON, at most {MAX_JSON_BYTES}"
    return None


def _json_problem(value: object, where: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"{where}: nested deeper than {MAX_DEPTH} levels"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:  # past sys.get_int_max_str_digits(): json.dumps fails the same
            return f"{where}: a number with too many digits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: {value} is not a finite number"
    if isinstance(value, str):
        return text_problem(value, where)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: a key that is not text"
            problem = text_problem(key, f"{where} key {key[:64]!r}") or _json_problem(
                item, f"{where}.{key[:64]}", depth + 1
            )
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{index}]", depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{where}: a {type(value).__name__} is not JSON"


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with NUL and lone surrogates escaped: safe to
    store and to log whatever a panel sent."""
    cut = text[:limit].replace("\x00", "\\x00")
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")
