"""PC/SC through pyscard: the one module that touches it, with blocking calls off the loop.

Every pyscard call runs in a worker thread; each card gets its own single-thread executor
because pyscard connections are not thread-safe. Every pyscard exception leaves this module
as a ``PcscError`` (see ``drivers.errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.System import readers as _pyscard_readers

from drivers.errors import (
    CardRemoved,
    NoCard,
    PcscError,
    PcscUnavailable,
    ReaderUnavailable,
)
from drivers.transport import CardTransport

T = TypeVar("T")
Protocol = Literal["T=0", "T=1", "any"]

_PROTOCOLS: dict[str, int] = {
    "T=0": CardConnection.T0_protocol,
    "T=1": CardConnection.T1_protocol,
    "any": CardConnection.T0_protocol | CardConnection.T1_protocol,
}
_UNSIGNED = 0x100000000
_ERRORS: dict[int, type[PcscError]] = {
    scard.SCARD_E_NO_SERVICE: PcscUnavailable,
    scard.SCARD_E_SERVICE_STOPPED: PcscUnavailable,
    scard.SCARD_E_UNKNOWN_READER: ReaderUnavailable,
    scard.SCARD_E_READER_UNAVAILABLE: ReaderUnavailable,
    scard.SCARD_E_NO_READERS_AVAILABLE: ReaderUnavailable,
    scard.SCARD_E_NO_SMARTCARD: NoCard,
    scard.SCARD_W_REMOVED_CARD: CardRemoved,
    scard.SCARD_W_RESET_CARD: CardRemoved,
    scard.SCARD_W_UNPOWERED_CARD: CardRemoved,
    scard.SCARD_W_UNRESPONSIVE_CARD: CardRemoved,
}
_PYSCARD_ERRORS = (SmartcardException, BaseSCardException)
WATCH_POLL_MS = 500  # the watcher thread notices a stop request at least this often
WATCH_QUEUE = 64


def _hresult(exc: BaseException) -> int:
    value = getattr(exc, "hresult", -1)
    return int(value) if isinstance(value, int) else -1


def _kind(code: int) -> type[PcscError]:
    # pyscard reports codes signed or unsigned depending on the call; try both.
    return (
        _ERRORS.get(code)
        or _ERRORS.get(code - _UNSIGNED)
        or _ERRORS.get(code + _UNSIGNED)
        or PcscError
    )


def _translate(exc: BaseException, what: str) -> PcscError:
    """The typed error for a pyscard exception; unknown codes give plain PcscError."""
    code = _hresult(exc)
    return _kind(code)(f"{what}: {exc}", code)


def _check(hresult: int, what: str) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        message = f"{what}: {scard.SCardGetErrorMessage(hresult)} (0x{hresult % _UNSIGNED:08X})"
        raise _kind(hresult)(message, hresult)


def _list_readers() -> list[str]:
    try:
        return [str(reader) for reader in _pyscard_readers()]
    except _PYSCARD_ERRORS as exc:
        raise _translate(exc, "listing readers") from exc


async def list_readers() -> list[str]:
    """The names of the readers pcscd knows; PcscUnavailable when pcscd is not there."""
    return await asyncio.to_thread(_list_readers)


class PcscTransport(CardTransport):
    """One connected card; transmits run in order on the card's own worker thread."""

    def __init__(
        self, reader: str, connection: Any, atr: bytes, executor: ThreadPoolExecutor
    ) -> None:
        self.reader = reader
        self._connection = connection
        self._executor = executor
        self._atr = atr
        self._closed = False

    @classmethod
    async def connect(
        cls, reader_name: str, protocol: Protocol = "T=1", *, exclusive: bool = False
    ) -> PcscTransport:
        """Connect to the card in ``reader_name`` (exact name or unique prefix).

        ``exclusive`` keeps other PC/SC clients off the card while connected: in shared mode
        another application's SELECT can land between our GET DATA and its GET RESPONSE.
        """
        if protocol not in _PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(_PROTOCOLS)}")
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"pcsc-{reader_name}")

        def open_connection() -> tuple[Any, bytes]:
            try:
                matches = [r for r in _pyscard_readers() if str(r).startswith(reader_name)]
                if len(matches) != 1:
                    raise ReaderUnavailable(f"{len(matches)} readers match {reader_name!r}")
                connection = matches[0].createConnection()
                mode = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
                connection.connect(_PROTOCOLS[protocol], mode)
                return connection, bytes(connection.getATR())
            except _PYSCARD_ERRORS as exc:
                raise _translate(exc, f"connecting to {reader_name!r}") from exc

        loop = asyncio.get_running_loop()
        try:
            connection, atr = await loop.run_in_executor(executor, open_connection)
            return cls(reader_name, connection, atr, executor)
        except BaseException:
            executor.shutdown(wait=False)
            raise

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return self._atr

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response data followed by SW1 SW2."""
        if self._closed:
            raise PcscError(f"transport to {self.reader!r} is closed")

        def call() -> bytes:
            try:
                data, sw1, sw2 = self._connection.transmit(list(apdu))
            except _PYSCARD_ERRORS as exc:
                raise _translate(exc, f"transmit to {self.reader!r}") from exc
            return bytes(data) + bytes((sw1, sw2))

        return await self._run(call)

    async def close(self) -> None:
        """Disconnect (errors from a card already gone are ignored) and stop the worker."""
        if self._closed:
            return
        self._closed = True

        def call() -> None:
            with contextlib.suppress(*_PYSCARD_ERRORS):
                self._connection.disconnect()
            with contextlib.suppress(*_PYSCARD_ERRORS):
                self._connection.release()

        try:
            await self._run(call)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> PcscTransport:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@dataclass(frozen=True, slots=True)
class CardInserted:
    """A card appeared in ``reader``."""

    reader: str
    atr: bytes


@dataclass(frozen=True, slots=True)
class CardRemovedEvent:
    """The card left ``reader``."""

    reader: str


WatchEvent = CardInserted | CardRemovedEvent


class ReaderWatch:
    """Card insertions and removals as an async iterator, from a watcher thread.

    The thread blocks in SCardGetStatusChange on its own PC/SC context; leaving the
    ``async with`` cancels that wait and joins the thread. Cards present at the start are
    reported as inserted. When the bounded queue is full, further events are dropped and
    counted in ``dropped``.
    """

    def __init__(self, max_events: int = WATCH_QUEUE) -> None:
        self._queue: asyncio.Queue[WatchEvent | PcscError] = asyncio.Queue(max_events)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0

    async def __aenter__(self) -> ReaderWatch:
        self._loop = asyncio.get_running_loop()
        self._context = await asyncio.to_thread(self._establish)
        self._thread = threading.Thread(target=self._run, name="pcsc-watch", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._stop.set()
        if self._context is not None:
            scard.SCardCancel(self._context)  # wakes SCardGetStatusChange at once
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._context is not None:
            context, self._context = self._context, None
            scard.SCardReleaseContext(context)

    def __aiter__(self) -> ReaderWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        item = await self._queue.get()
        if isinstance(item, PcscError):
            raise item
        return item

    @staticmethod
    def _establish() -> int:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(hresult, "establishing a PC/SC context")
        return int(context)

    def _post(self, item: WatchEvent | PcscError) -> None:
        # Runs on the event loop, so the queue is only ever touched from there.
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def _emit(self, item: WatchEvent | PcscError) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            self._loop.call_soon_threadsafe(self._post, item)

    def _run(self) -> None:
        try:
            self._watch()
        except PcscError as exc:
            if not self._stop.is_set():
                self._emit(exc)

    def _watch(self) -> None:
        context = self._context
        present: dict[str, bytes] = {}
        states: dict[str, int] = {}
        while not self._stop.is_set():
            hresult, names = scard.SCardListReaders(context, [])
            if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
                names = []
            elif hresult != scard.SCARD_S_SUCCESS:
                _check(hresult, "listing readers")
            for gone in set(present) - set(names):
                del present[gone]
                self._emit(CardRemovedEvent(gone))
            query = [(name, states.get(name, scard.SCARD_STATE_UNAWARE)) for name in names]
            if not query:
                self._stop.wait(WATCH_POLL_MS / 1000)
                continue
            hresult, result = scard.SCardGetStatusChange(context, WATCH_POLL_MS, query)
            if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if hresult == scard.SCARD_E_UNKNOWN_READER:
                states.clear()
                continue
            _check(hresult, "waiting for card events")
            states = {}
            for name, event_state, atr in result:
                states[name] = event_state & ~scard.SCARD_STATE_CHANGED
                inserted = bool(event_state & scard.SCARD_STATE_PRESENT) and not bool(
                    event_state & scard.SCARD_STATE_MUTE
                )
                if inserted and name not in present:
                    present[name] = bytes(atr)
                    self._emit(CardInserted(name, bytes(atr)))
                elif not inserted and name in present:
                    del present[name]
                    self._emit(CardRemovedEvent(name))
