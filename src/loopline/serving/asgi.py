"""The ASGI plumbing of the service: headers, bounded bodies, responses, and responses
streamed as Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loopline.serving.problems import refuse

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(
    scope: Scope, receive: Receive, max_bytes: int, timeout_s: float = 10.0
) -> bytes:
    """The request body, refused with a 413 as soon as it is known to exceed
    ``max_bytes`` (from its Content-Length, before reading it, or while reading), and
    with a 408 if it has not all arrived ``timeout_s`` after the headers: a sender
    dribbling a byte at a time must not hold an in-flight slot for ever."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(receive, max_bytes)
    except TimeoutError:
        raise refuse(
            408, f"The body did not arrive within {timeout_s:g} s.", detail="Send it at once."
        ) from None


async def _read(receive: Receive, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(max_bytes: int) -> Exception:
    return refuse(
        413, f"Body larger than {max_bytes} bytes.", detail="This route's limit; see /openapi.json."
    )


async def respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status in (429, 503):
        base.append((b"retry-after", b"1"))
    names = {k for k, _ in headers}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(h for h in base if h[0] not in names), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EventStream:
    """A ``text/event-stream`` response (Server-Sent Events): each :meth:`send` is one
    ``data:`` event, flushed at once; :meth:`close` ends the body. The response starts
    with the first event, so an error found before it can still be a plain 4xx."""

    def __init__(self, send: Send, headers: Headers | None = None) -> None:
        self._send = send
        self._headers = headers or []
        self.started = False

    async def _start(self) -> None:
        await self._send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # proxies must not hold events back
                    *self._headers,
                ],
            }
        )
        self.started = True

    async def send(self, data: bytes, event: str | None = None) -> None:
        if not self.started:
            await self._start()
        head = b"" if event is None else b"event: " + event.encode() + b"\n"
        body = head + b"data: " + data + b"\n\n"
        await self._send({"type": "http.response.body", "body": body, "more_body": True})

    async def close(self) -> None:
        if not self.started:
            await self._start()
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def disconnected(receive: Receive) -> None:
    """Return when the client goes away (``http.disconnect``)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
