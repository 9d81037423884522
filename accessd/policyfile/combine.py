"""Several policy files as one deployment's policy: each file read on its own (YAML and
schema), then their documents merged and checked as one, so a level in one file may name a
door of a facility in another, and a name defined in two files is an error where the second
defines it, naming the first (`FILE:LINE`).

A version row keeps the files as one text, `pack`ed: a header line, then each file exactly
as applied after a `--- # file: NAME (N characters)` marker (a YAML document start, so the
text still reads as a multi-document stream). `unpack` gives the files back unchanged. One
file is kept as its own text, as before multi-file policies existed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path as FilePath

from accessd.policyfile import checks
from accessd.policyfile.document import FORMAT_VERSION, PolicyDocument
from accessd.policyfile.findings import Finding, Lines, PolicyRejected
from accessd.policyfile.loader import PolicyFile, parse

#: The document's lists that several files add to.
_KINDS = ("holiday_calendars", "schedules", "groups", "facilities", "access_levels")
_HEADER = "# accessd policy: {n} files; each part below is one file, exactly as applied\n"
_HEADER_RX = re.compile(r"# accessd policy: (\d+) files; [^\n]*\n")
_MARK = "--- # file: {name} ({size} characters)\n"
_MARK_RX = re.compile(r"--- # file: (.*) \((\d+) characters\)\n")

#: (file name, text) as given to `parse_all` and kept by `pack`.
Part = tuple[str, str]


class CombinedLines(Lines):
    """Lines of a merged document: each path is looked up in the file its item came from
    (item i of `facilities` is item i - offset of one file's `facilities`)."""

    def __init__(self, parts: Sequence[PolicyFile]) -> None:
        super().__init__()
        self._parts = parts
        #: kind -> [(index of the first item from this file, file index)], ascending.
        self._spans: dict[str, list[tuple[int, int]]] = {}
        for kind in _KINDS:
            offset, spans = 0, []
            for k, part in enumerate(parts):
                assert part.document is not None
                n = len(getattr(part.document, kind))
                if n:
                    spans.append((offset, k))
                offset += n
            self._spans[kind] = spans

    def _locate(self, path: tuple[object, ...]) -> tuple[int, tuple[object, ...]]:
        if len(path) >= 2 and isinstance(path[1], int):
            for offset, k in reversed(self._spans.get(str(path[0]), ())):
                if path[1] >= offset:
                    return k, (path[0], path[1] - offset, *path[2:])
        # The top of the document and its keys: the first file.
        return 0, path

    def at(self, *path: object) -> int | None:
        k, local = self._locate(path)
        return self._parts[k].lines.at(*local)

    def source_of(self, *path: object) -> str | None:
        return self._parts[self._locate(path)[0]].source


def parse_all(parts: Sequence[Part], *, source: str | None = None) -> PolicyFile:
    """Parses and checks files that together form the policy; one file is parsed exactly as
    `parse` does. `source` names the whole (default: the file names joined by ` + `)."""
    if not parts:
        raise ValueError("parse_all needs at least one file")
    if len(parts) == 1:
        name, text = parts[0]
        return parse(text, source or name)
    label = source or " + ".join(name for name, _ in parts)
    seen: set[str] = set()
    for name, _ in parts:
        if name in seen:
            finding = Finding(None, "the same file is given twice", source=name)
            return PolicyFile(label, pack(parts), None, Lines(), [finding])
        seen.add(name)
    files = tuple(parse(text, name, semantic=False) for name, text in parts)
    return combine(files, label)


def read_all(paths: Sequence[FilePath]) -> PolicyFile:
    """Reads and checks policy files as one policy (OSError and UnicodeDecodeError pass
    through)."""
    return parse_all([(str(p), p.read_text(encoding="utf-8")) for p in paths])


def combine(files: Sequence[PolicyFile], source: str) -> PolicyFile:
    """One policy of files each parsed with `semantic=False`: their findings, each with its
    file, and the merged document's checks."""
    order = {f.source: i for i, f in enumerate(files)}
    findings = [replace(f, source=part.source) for part in files for f in part.findings]
    text = pack([(f.source, f.text) for f in files])
    if any(f.document is None for f in files):
        return PolicyFile(source, text, None, Lines(), _ordered(findings, order), tuple(files))
    document = merge([f.document for f in files if f.document is not None])
    lines = CombinedLines(files)
    findings.extend(checks.check(document, lines))
    return PolicyFile(source, text, document, lines, _ordered(findings, order), tuple(files))


def merge(documents: Sequence[PolicyDocument]) -> PolicyDocument:
    """The documents' lists concatenated, in file order."""
    return PolicyDocument(
        version=FORMAT_VERSION,
        **{kind: [item for doc in documents for item in getattr(doc, kind)] for kind in _KINDS},
    )


def _ordered(findings: list[Finding], order: dict[str, int]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (order.get(f.source or "", 0), f.line or 0, f.severity != "error"),
    )


def pack(parts: Sequence[Part]) -> str:
    """The files as one text for a version row; one file is its own text."""
    if len(parts) == 1 and not _HEADER_RX.match(parts[0][1]):
        return parts[0][1]
    out = [_HEADER.format(n=len(parts))]
    for name, text in parts:
        # A name is a label; a line break in one would end the marker early.
        out.append(_MARK.format(name=" ".join(name.splitlines()), size=len(text)))
        out.append(text)
        if not text.endswith("\n"):
            out.append("\n")
    return "".join(out)


def unpack(stored: str, source: str) -> list[Part] | None:
    """The files `pack` made `stored` of, exactly; None when it is the text of one file.
    Raises PolicyRejected when the text starts like a pack but is not one."""
    header = _HEADER_RX.match(stored)
    if header is None:
        return None
    parts: list[Part] = []
    pos = header.end()
    while pos < len(stored):
        mark = _MARK_RX.match(stored, pos)
        if mark is None:
            break
        start = mark.end()
        end = start + int(mark.group(2))
        text = stored[start:end]
        if len(text) != int(mark.group(2)):
            break
        parts.append((mark.group(1), text))
        pos = end
        if not text.endswith("\n"):
            if stored[end : end + 1] != "\n":
                break
            pos += 1
    if pos != len(stored) or len(parts) != int(header.group(1)):
        raise PolicyRejected(
            source,
            [Finding(None, "the stored policy is damaged: its parts do not match its header")],
        )
    return parts
