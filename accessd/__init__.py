"""accessd: physical-access control and PIV credential management service."""

__version__ = "0.1.0"
