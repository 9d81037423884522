"""Reading a policy file: YAML with the line of every key and item, then the schema, then
the semantic checks, every error collected and reported as `FILE:LINE: message`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from accessd.policyfile import checks
from accessd.policyfile.document import PolicyDocument
from accessd.policyfile.findings import Finding, Lines, Path

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    # libyaml's parser when PyYAML has it: about four times faster on a large file (a
    # deployment of 100,000 people lists them in its groups).
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """SafeLoader with YAML 1.2 scalars: YAML 1.1 reads `07:30` as the number 450 and
    `on`/`no` as booleans, which hand-written schedules and names trip over."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in {_BOOL, _INT, _FLOAT}]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


@dataclass
class PolicyFile:
    """A policy file as read: its text, the document (None when the schema refused it),
    where each part of it is, and what the checks found. Several files combined into one
    deployment's policy are one PolicyFile too, with the files as its `parts`."""

    source: str
    text: str
    document: PolicyDocument | None
    lines: Lines
    findings: list[Finding] = field(default_factory=list)
    #: The files it combines (see `combine`); empty for a file read on its own.
    parts: tuple[PolicyFile, ...] = ()

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def read(path: FilePath) -> PolicyFile:
    """Reads and checks a policy file (OSError and UnicodeDecodeError pass through)."""
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, source: str, *, semantic: bool = True) -> PolicyFile:
    """Parses and checks a policy document; never raises for anything in the text.
    `semantic=False` stops after the schema: a file that is one of several refers to names
    the others define, so it is checked only once they are combined."""
    try:
        data, marks = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        return PolicyFile(source, text, None, Lines(), [Finding(line, f"YAML: {problem}")])
    except yaml.YAMLError as exc:
        return PolicyFile(source, text, None, Lines(), [Finding(None, f"YAML: {exc}")])
    lines = Lines(marks.lines)
    findings = list(marks.duplicates)
    if not isinstance(data, dict):
        findings.append(Finding(1, "the document must be a mapping with `version: 1` first"))
        return PolicyFile(source, text, None, lines, findings)
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        findings.extend(_schema_finding(err, lines) for err in exc.errors())
        return PolicyFile(source, text, None, lines, _ordered(findings))
    if semantic:
        findings.extend(checks.check(document, lines))
    return PolicyFile(source, text, document, lines, _ordered(findings))


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.line or 0, f.severity != "error"))


#: Values a document may expand to. Aliases repeat what they name, so a few lines can
#: otherwise expand to billions ("billion laughs"); real policy files hold thousands.
_MAX_VALUES = 1_000_000


@dataclass
class _Marks:
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[Finding] = field(default_factory=list)
    values: int = 0


def _compose(text: str) -> tuple[Any, _Marks]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        marks = _Marks()
        data = None if root is None else _build(loader, root, (), marks, depth=0)
    finally:
        loader.dispose()
    return data, marks


def _build(loader: _Loader, node: yaml.Node, path: Path, marks: _Marks, depth: int) -> Any:
    """Constructs the Python value of `node`, noting the line of every key and item."""
    marks.values += 1
    if depth > 64 or marks.values > _MAX_VALUES:
        problem = "nesting too deep" if depth > 64 else "the document expands to too many values"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
    marks.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<` merge keys, as the safe constructor does
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                # A key that is a list or a mapping (or an alias to one) means nothing in a
                # policy, and PyYAML would build it unbounded: an alias to a nest of
                # aliases as a key took 42 s and 3 GiB for a 505-byte file.
                # An alias's mark is its anchor's: name the mapping that uses it instead.
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", node.start_mark
                )
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)  # dates and the like; pydantic parses them back
            line = key_node.start_mark.line + 1
            if key in first_line:
                marks.duplicates.append(
                    Finding(line, f"key {key!r} is given twice (first on line {first_line[key]})")
                )
            first_line[key] = line
            here = (*path, str(key))
            marks.lines[here] = line  # the key's line, not its value's
            out[key] = _build(loader, value_node, here, marks, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), marks, depth + 1) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


_MESSAGES = {
    "extra_forbidden": "unknown key {key!r}",
    "missing": "{key!r} is required",
}


def _schema_finding(err: ErrorDetails, lines: Lines) -> Finding:
    loc = tuple(err["loc"])
    key = next((str(p) for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "document")
    template = _MESSAGES.get(err["type"])
    msg = err["msg"].removeprefix("Value error, ")
    if template is not None:
        message = template.format(key=key)
    elif loc and loc[-1] == "[key]":
        message = msg  # the message names the key itself
    else:
        message = f"{key}: {msg}"
    return Finding(lines.at(*loc), message)
