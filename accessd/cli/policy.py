"""`accessd policy`: check, apply, list, roll back and export site policy files; the
access impact of a change; the SP 800-116 compliance report of the stored policy.

Commands that take files take several: together they form the deployment's policy."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from accessd.policyfile import PolicyFile
    from accessd.policyfile.compliance import FacilityReport
    from accessd.policyfile.impact import AccessImpact
    from accessd.policyfile.site import SiteDiff


def add_policy_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `policy check|apply|impact|compliance|versions|rollback|export` to the parser."""
    p = sub.add_parser(
        "policy", help="site policy files: check, apply, impact, compliance, versions, rollback"
    )
    acts = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")

    c = acts.add_parser("check", help="validate policy files; errors as FILE:LINE")
    c.add_argument("files", type=Path, nargs="+", metavar="FILE")
    c.add_argument(
        "--against-db",
        action="store_true",
        help="also check that the people it names exist in the database",
    )
    c.set_defaults(func=cmd_check)

    a = acts.add_parser("apply", help="make the database match policy files, as a new version")
    a.add_argument("files", type=Path, nargs="+", metavar="FILE")
    a.add_argument(
        "--dry-run",
        action="store_true",
        help="print the changes and who gains or loses access, apply nothing",
    )
    a.add_argument("--comment", default="", help="kept with the version")
    a.add_argument(
        "--prune",
        action="store_true",
        help="remove the records these files do not mention (the files are the whole deployment)",
    )
    _accept_losses(a)
    a.set_defaults(func=cmd_apply)

    i = acts.add_parser("impact", help="who would gain or lose access to which areas")
    i.add_argument("files", type=Path, nargs="+", metavar="FILE")
    i.set_defaults(func=cmd_impact)

    k = acts.add_parser(
        "compliance", help="each door's demanded factors against its area; exit 1 if any fails"
    )
    k.add_argument("--facility", metavar="CODE", help="only this facility")
    k.add_argument("--json", action="store_true", help="print the report as JSON")
    k.set_defaults(func=cmd_compliance)

    v = acts.add_parser("versions", help="list applied versions, newest first")
    v.add_argument("--limit", type=int, default=50)
    v.set_defaults(func=cmd_versions)

    r = acts.add_parser("rollback", help="re-apply an earlier version as a new version")
    r.add_argument("version", type=int)
    r.add_argument("--dry-run", action="store_true", help="print the changes, apply nothing")
    r.add_argument("--comment", default="")
    _accept_losses(r)
    # A stored version is a whole deployment: going back to it removes what came after.
    r.set_defaults(func=cmd_rollback, prune=True)

    e = acts.add_parser("export", help="print the database's policy as a policy file")
    e.add_argument("--output", "-o", type=Path, help="write to this file instead")
    e.set_defaults(func=cmd_export)


def _read(paths: list[Path]) -> PolicyFile | int:
    """The files as one policy, or the exit status when one cannot be read."""
    from accessd.policyfile import parse_all

    parts = []
    for path in paths:
        if not path.is_file():
            print(f"accessd: no such file: {path}", file=sys.stderr)
            return 2
        try:
            parts.append((str(path), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            print(f"accessd: {path} is not UTF-8 text ({exc.reason})", file=sys.stderr)
            return 1
    return parse_all(parts)


def _in_session(args: argparse.Namespace, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Runs `work` in one session of the configured database; policy errors become exit 1."""
    import asyncio

    from accessd.cli.common import settings_from
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.errors import AccessdError
    from accessd.events import EventBus, session_info
    from accessd.policyfile import PolicyRejected

    settings = settings_from(args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        sessions.configure(info=session_info(EventBus()))
        try:
            async with sessions() as session:
                return await work(session)
        except PolicyRejected as exc:
            for finding in exc.findings:
                print(finding.render(exc.source), file=sys.stderr)
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        except AccessdError as exc:
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def cmd_check(args: argparse.Namespace) -> int:
    policy = _read(args.files)
    if isinstance(policy, int):
        return policy
    findings = list(policy.findings)
    if args.against_db and policy.document is not None:
        from accessd.policyfile import unknown_people

        async def people(session: AsyncSession) -> int:
            findings.extend(await unknown_people(session, policy))
            return 0

        _in_session(args, people)
    order = {part.source: i for i, part in enumerate(policy.parts)}
    for finding in sorted(findings, key=lambda f: (order.get(f.source or "", 0), f.line or 0)):
        print(finding.render(policy.source))
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    print(f"{policy.source}: {_count(errors, 'error')}, {_count(warnings, 'warning')}")
    return 1 if errors else 0


def _accept_losses(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-losses",
        action="store_true",
        help="apply even though people lose access (asked at a terminal otherwise)",
    )


def cmd_apply(args: argparse.Namespace) -> int:
    policy = _read(args.files)
    if isinstance(policy, int):
        return policy
    for finding in policy.warnings:
        print(finding.render(policy.source), file=sys.stderr)
    return _in_session(args, lambda session: _apply(session, args, policy, None))


def cmd_rollback(args: argparse.Namespace) -> int:
    from accessd.policyfile.versions import stored

    async def work(session: AsyncSession) -> int:
        policy = await stored(session, args.version)
        return await _apply(session, args, policy, args.version)

    return _in_session(args, work)


async def _apply(
    session: AsyncSession, args: argparse.Namespace, policy: PolicyFile, rollback_of: int | None
) -> int:
    from accessd.models.enums import Entity
    from accessd.policyfile import apply
    from accessd.policyfile.impact import preview

    # Always previewed first (in a transaction rolled back), without the version row, so a
    # refused or dry run uses up no version number (PostgreSQL sequences do not roll back).
    seen = await preview(session, policy, actor=_actor())
    _print_changes(seen.changes)
    if not seen.changes:
        print("no changes")
        return 0
    _print_impact(seen.impact)
    described = [f.code for f in policy.document.facilities] if policy.document else []
    beyond = seen.changes.removed_beyond(described)
    # Whole facilities first: the loss an operator must not miss.
    removed = [str(c) for c in sorted(beyond, key=lambda c: c.entity != Entity.FACILITY)]
    refusals = []
    # Applying some files of a deployment must not remove what the others describe (the
    # README's hq.yaml alone once took the field office away): only --prune does that.
    if removed and not args.prune:
        refusals.append(
            f"{len(removed)} records that these files do not describe would be removed "
            f"({', '.join(removed[:3])}{', …' if len(removed) > 3 else ''}): give every "
            "file of the deployment, or --prune to remove them"
        )
    if seen.impact.lost and not args.accept_losses and not _confirmed(seen.impact):
        refusals.append(
            f"{len(seen.impact.lost)} area accesses would be lost (listed above with -): "
            "--accept-losses to apply them"
        )
    if args.dry_run:
        for refusal in refusals:
            print(f"would be refused: {refusal}")
        print(f"dry run: {_counts(seen.changes)}; nothing was applied")
        return 0
    if refusals:
        for refusal in refusals:
            print(f"accessd: refused: {refusal}", file=sys.stderr)
        print("nothing was applied", file=sys.stderr)
        return 1
    done = await apply(session, _actor(), policy, comment=args.comment, rollback_of=rollback_of)
    if done.version is None:
        await session.rollback()
        print("no changes")
        return 0
    await session.commit()
    print(f"applied as version {done.version.id}: {_counts(done.changes)}")
    return 0


def _confirmed(impact: AccessImpact) -> bool:
    """At a terminal, the operator is asked; a script must say --accept-losses."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{len(impact.lost)} area accesses will be lost. Apply? [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


def _print_changes(changes: SiteDiff) -> None:
    for line in changes.lines():
        print(line)


def _print_impact(impact: AccessImpact) -> None:
    for line in impact.lines():
        print(line)
    print(impact.summary())


def cmd_impact(args: argparse.Namespace) -> int:
    from accessd.policyfile.impact import preview

    policy = _read(args.files)
    if isinstance(policy, int):
        return policy
    for finding in policy.warnings:
        print(finding.render(policy.source), file=sys.stderr)

    async def work(session: AsyncSession) -> int:
        seen = await preview(session, policy, actor=_actor())
        if not seen.changes:
            print("no changes")
        _print_impact(seen.impact)
        return 0

    return _in_session(args, work)


def cmd_compliance(args: argparse.Namespace) -> int:
    """Exit 1 when a door is non-compliant (or the facility is unknown)."""
    import json

    from accessd.policyfile.compliance import report

    async def work(session: AsyncSession) -> int:
        facilities = await report(session, facility=args.facility)
        if args.json:
            print(json.dumps([f.as_dict() for f in facilities], indent=2))
        else:
            _print_compliance(facilities)
        return 0 if all(f.compliant for f in facilities) else 1

    return _in_session(args, work)


def _print_compliance(facilities: list[FacilityReport]) -> None:
    head = ("DOOR", "AREA", "CLASS", "SCIF", "DEMANDS", "ACCEPTS", "PROVES", "VERDICT")
    for fac in facilities:
        raised = (
            f" (at least {fac.threat_min_factors} factors where an area demands any)"
            if fac.threat_min_factors
            else ""
        )
        print(f"{fac.code} {fac.name}: threat level {fac.threat_level}{raised}")
        rows = [
            (
                d.door,
                d.area,
                d.area_class,
                "yes" if d.scif else "no",
                "+".join(d.demanded) or "-",
                ",".join(d.accepts) or "-",
                "+".join(d.proves) or "-",
                d.verdict if d.mode != "locked" else f"{d.verdict} (locked)",
            )
            for d in fac.doors
        ]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for n, row in enumerate([head, *rows]):
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n:
                for reason in fac.doors[n - 1].reasons:
                    print(f"      ! {reason}")
        bad = sum(not d.compliant for d in fac.doors)
        print(f"  {len(fac.doors)} doors, {bad} non-compliant\n")
    if not facilities:
        print("no facilities")


def _counts(changes: SiteDiff) -> str:
    return ", ".join(f"{len(v)} {k}" for k, v in changes.summary().items())


def cmd_versions(args: argparse.Namespace) -> int:
    from accessd.policyfile import history

    async def work(session: AsyncSession) -> int:
        for v in await history(session, limit=args.limit):
            n = {k: len(items) for k, items in v.changes.items()}
            note = f"  rollback to {v.rollback_of}" if v.rollback_of is not None else ""
            comment = f"  {v.comment}" if v.comment else ""
            print(
                f"{v.id:>4}  {v.applied_at:%Y-%m-%d %H:%M:%S}Z  {v.actor:<16} {v.source}  "
                f"+{n.get('added', 0)} ~{n.get('changed', 0)} -{n.get('removed', 0)}"
                f"{note}{comment}"
            )
        return 0

    return _in_session(args, work)


def cmd_export(args: argparse.Namespace) -> int:
    from accessd.policyfile import dump, export

    async def work(session: AsyncSession) -> int:
        text = dump(await export(session))
        if args.output is not None:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0

    return _in_session(args, work)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"
