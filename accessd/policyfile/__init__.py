"""Site policy as code: door policy in YAML files, checked and applied as a new version.

One file, or several together, describe the whole door policy of one accessd deployment:
holiday calendars, schedules, groups, facilities with their nested areas, panels, doors and
readers, and the access levels that grant doors to groups and people. Applying it makes the
database match it by natural keys (what the files no longer name is deleted), records one
audit entry per change and a `PolicyVersion`, and stages `PolicyChanged("all")`; files that
change nothing record nothing. See policies/examples/ for the format.

    read / parse     YAML -> PolicyFile: document, line of every key, findings
    combine          several files -> one PolicyFile; pack/unpack for the version row
    checks           references, duplicates, SP 800-116 rules
    site             the normalised site both sides are compared in; diff
    stored, writer   database -> site and rows; a diff -> database
    reconcile        the two joined: make the database match a file; unknown people
    versions         apply as a version, rollback, history
    export           database -> document -> YAML
    impact           who would gain or lose access to which areas (policies.reach)
    compliance       every door's demanded factors against what it and its readers prove
"""

from accessd.policyfile.combine import parse_all, read_all
from accessd.policyfile.export import dump, export
from accessd.policyfile.findings import Finding, PolicyConflict, PolicyRejected
from accessd.policyfile.loader import PolicyFile, parse, read
from accessd.policyfile.reconcile import unknown_people
from accessd.policyfile.versions import Applied, apply, history, rollback

__all__ = [
    "Applied",
    "Finding",
    "PolicyConflict",
    "PolicyFile",
    "PolicyRejected",
    "apply",
    "dump",
    "export",
    "history",
    "parse",
    "parse_all",
    "read",
    "read_all",
    "rollback",
    "unknown_people",
]
