"""Fake hardware behind the drivers' own seams: virtual PIV cards, a test PKI, MQTT panels
and OSDP readers. May import `drivers` (the wire formats are shared), never `accessd`."""
