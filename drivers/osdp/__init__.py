"""SIA OSDP 2.2 over serial: framing, the secure channel, messages and the control panel."""
