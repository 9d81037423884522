"""Requests waiting for their replies, matched by key: the one request/reply matcher.

Every request/reply exchange over MQTT is the same few steps: note the request's id before
publishing (a fast reply must find it), publish, wait with a deadline, forget the id
whatever happened, and fail every waiter at once when the connection that would carry the
answers goes. `Pending` holds those steps; what the key is and how a reply is read belongs
to its user: `MqttLink.request` keys by (reply topic, request id) and reads the id from the
MQTT 5 correlation data or the payload, the panel session keys by the id of its ``rsp``
payloads, the gateway by (panel, command id) of the results panels send.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Pending(Generic[K, T]):
    """Futures of the answers still awaited, by key. Use on the event loop only."""

    def __init__(self) -> None:
        self._waiting: dict[K, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def __contains__(self, key: object) -> bool:
        return key in self._waiting

    def expect(self, key: K) -> asyncio.Future[T]:
        """Registers ``key`` and returns the future its answer completes; call it before
        the request is sent. ValueError if ``key`` is already awaited."""
        if key in self._waiting:
            raise ValueError(f"{key!r} is already waiting for a reply")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    async def wait(self, key: K, future: asyncio.Future[T], timeout: float) -> T:  # noqa: ASYNC109 - the request's own deadline
        """The answer to ``key`` within ``timeout`` seconds (TimeoutError else); the key is
        forgotten however the wait ends."""
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result of a
            # future that completes as the waiter is cancelled, and the cancel is lost (a
            # panel's load loop that kept going after its task set was closed, never ending).
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.forget(key, future)

    async def ask(
        self,
        key: K,
        send: Awaitable[object],
        timeout: float,  # noqa: ASYNC109 - the request's own deadline
    ) -> T:
        """Expects ``key``, awaits ``send`` (the publish of the request), then the answer
        within ``timeout`` seconds (TimeoutError else); the key is forgotten however it
        ends, and ``send``'s own error comes out as it is."""
        try:
            future = self.expect(key)
        except ValueError:
            if inspect.iscoroutine(send):
                send.close()  # never started: no "never awaited" warning
            raise
        try:
            await send
            async with asyncio.timeout(timeout):  # not wait_for: see `wait`
                return await future
        finally:
            self.forget(key, future)

    def forget(self, key: K, future: asyncio.Future[T]) -> None:
        """Stops waiting for ``key`` (if ``future`` is still its waiter)."""
        if self._waiting.get(key) is future:
            del self._waiting[key]
        if not future.done():
            future.cancel()

    def resolve(self, key: K, answer: T) -> bool:
        """Hands ``answer`` to whoever waits for ``key``; False when nobody does (a late
        answer, or someone else's)."""
        future = self._waiting.get(key)
        if future is None or future.done():
            return False
        future.set_result(answer)
        return True

    def fail(self, key: K, exc: BaseException) -> None:
        """Ends the wait for ``key`` with ``exc`` (the request could not be sent)."""
        future = self._waiting.get(key)
        if future is not None and not future.done():
            future.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        """Ends every wait with ``exc``: the answers can no longer come."""
        for future in list(self._waiting.values()):
            if not future.done():
                future.set_exception(exc)

    def cancel_all(self) -> None:
        for future in list(self._waiting.values()):
            future.cancel()


def json_reply_id(payload: bytes) -> str | None:
    """The top-level string ``"id"`` of a JSON object payload, or None."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None
