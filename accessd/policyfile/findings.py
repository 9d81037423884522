"""What a check says about a policy file, by line, and the errors that refuse a file.

AccessdError
├── InvalidInput
│   └── PolicyRejected   the file has errors (schema, references, SP 800-116, unknown people)
└── Conflict
    └── PolicyConflict   the database cannot be made to match: a record to delete is still
                         referenced, or two records share the name the file matches by
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from accessd.errors import Conflict, InvalidInput

Severity = Literal["error", "warning"]
#: A place in the document: mapping keys and sequence indexes from the top.
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    line: int | None
    message: str
    severity: Severity = "error"
    #: The file it is in, when it came from one of several files; None: the one file read.
    source: str | None = None

    def render(self, source: str) -> str:
        """`FILE:LINE: error: message`, the form editors and CI annotations parse; FILE is
        the finding's own file when it has one, else `source`."""
        source = self.source or source
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.severity}: {self.message}"


class Lines:
    """The line (1-based) where each path of the document starts."""

    def __init__(self, marks: Mapping[Path, int] | None = None) -> None:
        self._marks = dict(marks or {})

    def source_of(self, *path: object) -> str | None:
        """The file `path` is in when the document was combined from several; None here."""
        return None

    def finding(
        self, path: Sequence[object], message: str, severity: Severity = "error"
    ) -> Finding:
        """A finding at `path`, with its line and (for combined documents) its file."""
        return Finding(self.at(*path), message, severity, self.source_of(*path))

    def first_at(self, first: Sequence[object], here: Sequence[object]) -> str:
        """Where `first` is, as said from `here`: `on line 3` in the same file, else
        `at FILE:3`."""
        source = self.source_of(*first)
        if source == self.source_of(*here):
            return f"on line {self.at(*first)}"
        return f"at {source}:{self.at(*first)}"

    def at(self, *path: object) -> int | None:
        """The line of `path`, or of its nearest enclosing path that is in the file (a
        missing key is reported where the mapping that lacks it starts)."""
        key = tuple(p if isinstance(p, int) else str(p) for p in path)
        while key:
            line = self._marks.get(key)
            if line is not None:
                return line
            key = key[:-1]
        return self._marks.get((), None)


class PolicyRejected(InvalidInput):
    """The policy file has errors; `findings` names each by line."""

    code = "policy_rejected"

    def __init__(self, source: str, findings: Iterable[Finding]) -> None:
        self.source = source
        self.findings = [f for f in findings if f.severity == "error"]
        n = len(self.findings)
        super().__init__(f"{source}: {n} error{'s' if n != 1 else ''}; nothing was applied")


class PolicyConflict(Conflict):
    """The database cannot be brought to match the file (see the detail)."""

    code = "policy_conflict"
