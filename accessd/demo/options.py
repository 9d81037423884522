"""What a run of the demo is asked for: one frozen record the command line fills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class DemoOptions:
    #: Cards, test PKI, broker logins, panel buffers: kept across runs.
    state_dir: Path = Path(".accessd-demo")
    #: Stop after this many seconds (tests); None: until Ctrl-C.
    exit_after: float | None = None
    #: Broker, cards and panels (when there is a broker); False: the API alone.
    panels: bool = True
    #: mosquitto, embedded (amqtt) or auto: Mosquitto when installed, else amqtt.
    broker: str = "auto"
    pki_port: int = 8099
    round_seconds: float = 20.0
    #: The simulated readers present cards as if at this time, running on from it; naive:
    #: in the timezone of the site whose panels are simulated. None: the real time.
    at: datetime | None = None
