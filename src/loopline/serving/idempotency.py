"""Idempotency: a request whose key was answered before gets the stored answer again,
marked ``replayed``; the key reused with other content is refused; a duplicate that
arrives while the first is still being answered waits for it (Stripe's idempotency
keys, kept in the prediction log itself)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec

from loopline.predictions import PredictionLog
from loopline.serving.problems import refuse

_json = msgspec.json.Encoder()


def payload_hash(body: Any) -> str:
    """The fingerprint of a request's content (key order does not matter)."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


class Idempotency:
    """Replays from ``log``, and the keys being answered now."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log
        self._pending: dict[str, asyncio.Future[bytes]] = {}

    async def replay(self, key: str, fingerprint: str) -> bytes | None:
        """The stored answer of ``key`` (None: a new request); a 422 if ``key`` was
        used with another request's content."""
        pending = self._pending.get(key)
        if pending is not None:  # answered (or failed) first: then the log says which
            await asyncio.wait([pending])
        if getattr(self.log, "remote", False):  # a network round trip: off the event loop
            stored = await asyncio.to_thread(self.log.find, key)
        else:
            stored = self.log.find(key)
        if stored is None:
            return None
        if stored.payload_sha256 != fingerprint:
            raise refuse(
                422,
                f"Idempotency key {key!r} was already used with a different request.",
                field="Idempotency-Key",
                detail="Use a new request id / Idempotency-Key for a new request.",
            )
        response = msgspec.json.decode(stored.response)
        if isinstance(response, dict):
            response["replayed"] = True
        return _json.encode(response)

    def claim(self, key: str) -> asyncio.Future[bytes]:
        """Hold ``key`` while its answer is made: a duplicate meanwhile waits for the
        returned future (set its result, or :meth:`release` with the error)."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        return future

    def release(self, key: str, error: BaseException | None = None) -> None:
        """``key`` answered (or failed with ``error``): duplicates go on."""
        future = self._pending.pop(key)
        if error is not None and not future.done():
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning
