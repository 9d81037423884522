"""Simulated door panels: door hardware and PIV readers around `drivers.panel`, many panels
in one process, and YAML scenarios that report what happened (``python -m simulators.panel``).
"""
