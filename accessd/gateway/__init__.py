"""Gateways that join the device drivers to the service's decisions and records."""
