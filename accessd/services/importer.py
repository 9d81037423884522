"""Bulk import of people, their security records and credentials from CSV.

All or nothing: every row is checked first (fields, lifecycle consistency, duplicates in
the file and against the database) and any error is reported by line number with nothing
written; then everything is inserted in one transaction with bulk statements.

One row per credential; a person with several credentials appears on several rows with the
same external_id (person fields after the first row may be left empty), and a person with
none leaves the credential columns empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
from accessd.db.base import utcnow
from accessd.errors import AccessdError
from accessd.events import PeopleImported, stage
from accessd.fields import (
    BadgeNumber,
    CardUUID,
    Email,
    ExternalId,
    FascN,
    Name,
    Organization,
    Sha256,
)
from accessd.models import (
    Credential,
    CredentialCertificate,
    CredentialTransition,
    Person,
    SecurityRecord,
)
from accessd.models.enums import (
    Adjudication,
    Affiliation,
    CredentialKind,
    CredentialState,
    Eligibility,
    Entity,
    InvestigationTier,
)
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.credentials import kind_refusal
from policies import lifecycle as lc

PERSON_COLUMNS = (
    "external_id",
    "given_name",
    "family_name",
    "email",
    "affiliation",
    "organization",
)
SECURITY_COLUMNS = (
    "investigation_tier",
    "adjudication",
    "adjudicated_on",
    "eligibility",
    "reinvestigation_due",
    "cv_enrolled",
)
CREDENTIAL_COLUMNS = (
    "credential_kind",
    "credential_state",
    "fasc_n",
    "card_uuid",
    "badge_number",
    "valid_from",
    "valid_until",
    "cert_9a_sha256",
    "cert_9e_sha256",
)
COLUMNS = PERSON_COLUMNS + SECURITY_COLUMNS + CREDENTIAL_COLUMNS
REQUIRED = ("external_id", "given_name", "family_name", "affiliation")

#: States a credential in the hands of its holder may be in: these need a favorable
#: adjudication (temporary badges excepted), exactly as issuance does through the API.
_ISSUED_STATES = frozenset(
    {CredentialState.ISSUED, CredentialState.ACTIVE, CredentialState.SUSPENDED}
)
_MAX_REPORTED = 200
Progress = Callable[[str, int, int], None]


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    external_id: ExternalId
    given_name: Name
    family_name: Name
    email: Email | None = None
    affiliation: Affiliation
    organization: Organization = ""
    investigation_tier: InvestigationTier = InvestigationTier.NONE
    adjudication: Adjudication = Adjudication.PENDING
    adjudicated_on: date | None = None
    eligibility: Eligibility = Eligibility.NONE
    reinvestigation_due: date | None = None
    cv_enrolled: bool = False
    credential_kind: CredentialKind | None = None
    credential_state: CredentialState = CredentialState.ACTIVE
    fasc_n: FascN | None = None
    card_uuid: CardUUID | None = None
    badge_number: BadgeNumber | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    cert_9a_sha256: Sha256 | None = None
    cert_9e_sha256: Sha256 | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


class ImportFailed(AccessdError):
    status = 422
    title = "Import refused"
    code = "import_failed"

    def __init__(self, errors: list[RowError], total: int) -> None:
        super().__init__(f"{total} row error(s); nothing was imported")
        self.errors = errors
        self.total = total


@dataclass
class ImportResult:
    people: int
    credentials: int
    rows: int


@dataclass
class _Plan:
    people: list[dict[str, Any]] = field(default_factory=list)
    security: list[dict[str, Any]] = field(default_factory=list)
    #: (index into people, credential fields, line)
    credentials: list[tuple[int, dict[str, Any], int]] = field(default_factory=list)
    certs: list[tuple[int, str, str]] = field(default_factory=list)  # (cred index, slot, sha)
    person_line: dict[str, int] = field(default_factory=dict)
    #: identifier kind -> value -> line, for duplicates in the file and in the database
    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_REPORTED:
            self.errors.append(RowError(line, message))

    def claim(self, kind: str, value: str | None, line: int) -> None:
        if value is None:
            return
        where = self.seen.setdefault(kind, {})
        first = where.get(value)
        if first is not None:
            self.error(line, f"{kind} {_show(kind, value)} is also on line {first}")
        else:
            where[value] = line


def _show(kind: str, value: str) -> str:
    # FASC-Ns are identifiers of people: show only enough to find the row.
    return f"…{value[-8:]}" if kind == "fasc_n" else repr(value)


def _messages(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields (line number, row); raises ImportFailed for a bad header."""
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        raise ImportFailed([RowError(1, "; ".join(parts))], 1)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # A NUL byte, a field past csv's size limit (128 KiB), a quote left open: the
            # file cannot be read past this line, so the import stops here, saying where.
            # line_num counts the lines of the records read whole; the bad one is next.
            line = reader.line_num + 1
            raise ImportFailed([RowError(line, f"unreadable CSV: {exc}")], 1) from exc
        if None in row:
            yield reader.line_num, {"__extra__": "x"}
            continue
        yield reader.line_num, row


def plan(stream: TextIO, *, today: date, progress: Progress | None = None) -> _Plan:
    """Checks every row and builds the inserts; touches no database."""
    p = _Plan()
    index_of: dict[str, int] = {}
    first_rows: dict[str, dict[str, str]] = {}
    for line, raw in read_rows(stream):
        p.rows += 1
        if progress and p.rows % 5000 == 0:
            progress("check", p.rows, 0)
        if "__extra__" in raw:
            p.error(line, "more fields than columns in the header")
            continue
        nul = [column for column, value in raw.items() if value and "\x00" in value]
        if nul:
            # PostgreSQL text cannot hold NUL; SQLite would store it and a later export
            # would carry it on. A clear line error, as for any other bad value.
            p.error(line, f"{', '.join(nul)}: contains a NUL character")
            continue
        first_raw = first_rows.get((raw.get("external_id") or "").strip())
        if first_raw is not None:
            # Later rows of a person may leave the person's columns empty.
            for c in PERSON_COLUMNS + SECURITY_COLUMNS:
                if not raw.get(c):
                    raw[c] = first_raw.get(c) or ""
        try:
            # An empty cell means "not given": the column's default applies.
            row = _Row.model_validate({k: v for k, v in raw.items() if v})
        except ValidationError as exc:
            p.error(line, _messages(exc))
            continue
        person = {c: getattr(row, c) for c in PERSON_COLUMNS}
        idx = index_of.get(row.external_id)
        if idx is None:
            index_of[row.external_id] = idx = len(p.people)
            p.people.append(person)
            p.security.append(
                {c: getattr(row, c) for c in SECURITY_COLUMNS}
                | {"cv_enrolled_on": today if row.cv_enrolled else None}
            )
            p.person_line[row.external_id] = line
            first_rows[row.external_id] = raw
        else:
            first = p.people[idx] | p.security[idx]
            mine = person | {c: getattr(row, c) for c in SECURITY_COLUMNS}
            clash = [c for c in PERSON_COLUMNS + SECURITY_COLUMNS if first[c] != mine[c]]
            if clash:
                p.error(
                    line,
                    f"{', '.join(clash)} differ from line "
                    f"{p.person_line[row.external_id]} for the same external_id",
                )
                continue
        if row.credential_kind is None:
            if any(raw.get(c) for c in CREDENTIAL_COLUMNS):
                p.error(line, "credential columns are filled but credential_kind is empty")
            continue
        why = _credential_refusal(row, p.security[idx], p.people[idx]["affiliation"])
        if why:
            p.error(line, why)
            continue
        assert row.valid_from is not None and row.valid_until is not None
        for kind in ("fasc_n", "card_uuid", "badge_number"):
            p.claim(kind, getattr(row, kind), line)
        for sha in (row.cert_9a_sha256, row.cert_9e_sha256):
            p.claim("certificate", sha, line)
        cred_index = len(p.credentials)
        p.credentials.append(
            (
                idx,
                {
                    "kind": row.credential_kind,
                    "state": row.credential_state,
                    "fasc_n": row.fasc_n,
                    "card_uuid": row.card_uuid,
                    "badge_number": row.badge_number,
                    "valid_from": row.valid_from,
                    "valid_until": row.valid_until,
                },
                line,
            )
        )
        if row.cert_9a_sha256:
            p.certs.append((cred_index, "9A", row.cert_9a_sha256))
        if row.cert_9e_sha256:
            p.certs.append((cred_index, "9E", row.cert_9e_sha256))
    for ext, line in p.person_line.items():
        p.claim("external_id", ext, line)
    return p


def _credential_refusal(
    row: _Row, security: dict[str, Any], affiliation: Affiliation
) -> str | None:
    assert row.credential_kind is not None
    if row.valid_from is None or row.valid_until is None:
        return "valid_from and valid_until are required for a credential"
    bad = lc.validity_refusal(row.credential_kind, row.valid_from, row.valid_until)
    if bad:
        return bad.detail
    why = kind_refusal(row.credential_kind, affiliation)
    if why:
        return why
    if (
        row.credential_state in _ISSUED_STATES
        and row.credential_kind not in lc.NO_ADJUDICATION_KINDS
        and security["adjudication"] is not Adjudication.FAVORABLE
    ):
        return (
            f"a {row.credential_state.value} credential needs a favorable adjudication "
            f"(the row says {security['adjudication'].value})"
        )
    return None


async def _check_database(session: AsyncSession, p: _Plan) -> None:
    """Reports identifiers that already exist in the database, by the line that repeats them."""
    columns = {
        "external_id": Person.external_id,
        "fasc_n": Credential.fasc_n,
        "card_uuid": Credential.card_uuid,
        "badge_number": Credential.badge_number,
        "certificate": CredentialCertificate.sha256,
    }
    for kind, column in columns.items():
        for value in await bulk.existing(session, column, list(p.seen.get(kind, {}))):
            p.error(p.seen[kind][value], f"{kind} {_show(kind, value)} exists already")


async def import_csv(
    session: AsyncSession,
    actor: Actor,
    stream: TextIO,
    *,
    source: str = "csv",
    progress: Progress | None = None,
    batch: int = 5000,
) -> ImportResult:
    """Imports everything in `stream` in the caller's transaction, or raises ImportFailed."""
    today = utcnow().date()
    p = plan(stream, today=today, progress=progress)
    if not p.error_count:
        await _check_database(session, p)
    if p.error_count:
        p.errors.sort(key=lambda e: e.line)
        raise ImportFailed(p.errors, p.error_count)

    now = utcnow()
    person_ids = await bulk.allocate_ids(session, Person, len(p.people))
    cred_ids = await bulk.allocate_ids(session, Credential, len(p.credentials))
    total = len(p.people) + len(p.credentials)
    stamp = {"version": 1, "created_at": now, "updated_at": now}

    def people_rows() -> Iterator[dict[str, Any]]:
        for n, (pid, person) in enumerate(zip(person_ids, p.people, strict=True), 1):
            if progress and n % batch == 0:
                progress("write", n, total)
            yield person | stamp | {"id": pid, "status": "active"}

    def security_rows() -> Iterator[dict[str, Any]]:
        for pid, sec in zip(person_ids, p.security, strict=True):
            judged = sec["adjudication"] is not Adjudication.PENDING
            yield (
                sec
                | stamp
                | {
                    "person_id": pid,
                    "eligibility_suspended": False,
                    "adjudicated_on": sec["adjudicated_on"] or (today if judged else None),
                }
            )

    def credential_rows() -> Iterator[dict[str, Any]]:
        for n, (cid, (pi, cred, _)) in enumerate(zip(cred_ids, p.credentials, strict=True), 1):
            if progress and n % batch == 0:
                progress("write", len(p.people) + n, total)
            yield cred | stamp | {"id": cid, "person_id": person_ids[pi]}

    await bulk.insert_rows(session, Person, people_rows())
    await bulk.insert_rows(session, SecurityRecord, security_rows())
    await bulk.insert_rows(session, Credential, credential_rows())
    await bulk.insert_rows(
        session,
        CredentialTransition,
        (
            {
                "credential_id": cid,
                "action": "import",
                "from_state": None,
                "to_state": c["state"],
                "actor_id": actor.operator_id,
                "at": now,
                "reason": f"imported from {source} line {line}",
            }
            for cid, (_, c, line) in zip(cred_ids, p.credentials, strict=True)
        ),
    )
    await bulk.insert_rows(
        session,
        CredentialCertificate,
        ({"credential_id": cred_ids[ci], "slot": slot, "sha256": sha} for ci, slot, sha in p.certs),
    )
    if progress:
        progress("write", total, total)

    creds_of: dict[int, list[int]] = {}
    for (pi, _, _), cid in zip(p.credentials, cred_ids, strict=True):
        creds_of.setdefault(pi, []).append(cid)
    await audit.record_many(
        session,
        actor=actor.label,
        action="person.import",
        entity=Entity.PERSON,
        items=(
            (
                pid,
                {
                    "source": source,
                    "line": p.person_line[person["external_id"]],
                    "external_id": person["external_id"],
                    "affiliation": person["affiliation"],
                    "credential_ids": creds_of.get(i, []),
                },
            )
            for i, (pid, person) in enumerate(zip(person_ids, p.people, strict=True))
        ),
    )
    stage(session, PeopleImported(tuple(person_ids), tuple(cred_ids)))
    return ImportResult(people=len(person_ids), credentials=len(cred_ids), rows=p.rows)


def sample_header() -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(COLUMNS)
    return buf.getvalue()
