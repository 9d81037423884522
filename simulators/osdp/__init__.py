"""Simulated OSDP readers (PDs) on a serial line: a pty for the real stack, or in memory."""
