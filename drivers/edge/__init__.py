"""The edge controller: a soft panel that owns an OSDP bus and talks to accessd over MQTT."""
