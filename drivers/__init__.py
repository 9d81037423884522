"""Device protocols: the PIV card edge over PC/SC, the MQTT panel protocol, OSDP over serial.

Each driver is layered transport → framing → transaction → device API; nothing here imports
`accessd` or `simulators`.
"""
