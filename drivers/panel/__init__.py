"""A door panel's own logic: offline credential cache, event buffer, door state machines and
the MQTT session that joins them (docs/protocols.md, "MQTT panel protocol").

Shared by the panel simulator and the OSDP edge controller, so it knows nothing of either:
the broker is behind `link.PanelLink`, time behind `clock.Clock`, hardware behind callbacks.
"""
