"""Broker addresses where no broker answers, the two ways a broker is away on a network.

`refusing_port()`: nothing listens, so a connect is refused at once (the broker is down).
`SynDrop`: something listens but never accepts and its backlog is full, so the kernel
drops every further SYN and a connect hangs until its own timeout (a firewall that drops,
a host that is gone): the case where "stop promptly" is not free.
"""

from __future__ import annotations

import contextlib
import socket

from tests.mqtt_broker import free_port


def refusing_port() -> int:
    """A loopback port nothing listens on (refused, as long as nobody binds it meanwhile)."""
    return free_port()


class SynDrop:
    """A loopback port whose connects hang; `accept_all` lets the waiting ones through."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        # Backlog 0 holds one connection; the fillers take it, later SYNs are dropped.
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # it completes in the kernel
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        self._filler_ports = {f.getsockname()[1] for f in self._fillers}
        #: Connections taken by `accept_all` other than the fillers': the clients'.
        self.accepted: list[socket.socket] = []

    def accept_all(self) -> None:
        """Frees the backlog (the fillers go) and takes whatever connection is queued."""
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
        self._listener.setblocking(False)
        while True:
            try:
                conn, (_host, port) = self._listener.accept()
            except BlockingIOError:
                return
            if port in self._filler_ports:
                conn.close()
            else:
                self.accepted.append(conn)

    def close(self) -> None:
        for sock in (*self._fillers, *self.accepted, self._listener):
            sock.close()
