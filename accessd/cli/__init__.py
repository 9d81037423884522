"""The `accessd` command line: `main` builds the parser from one module a command group.

Each command module imports only `common` from this package, never another command, so the
parser is built without import cycles and a command's heavy imports wait until it runs.
"""
