"""The machinery of bench/decisions_mqtt.py, a module for each part of the rig.

The panel side is the same script run again as a child process, and it holds hundreds of
clients on two shared cores: what only the service side needs (the service, SQLAlchemy,
PostgreSQL, the test broker, paho's own client) is imported inside the functions that use
it, so that a panel-side process never loads it.
"""
