"""Pure decision logic for accessd: no I/O, no database, no clock of its own.

Every function here takes the facts it needs (and the current time, where time matters) as
arguments, so the same rules run in the service, in the simulators and in tests.
"""
