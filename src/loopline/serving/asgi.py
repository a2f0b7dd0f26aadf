"""The ASGI plumbing of the service: headers, bounded bodies, responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loopline.serving.api import Problem, RequestError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(
                413,
                Problem(
                    error=f"Body larger than {max_bytes} bytes.",
                    detail="Send one transaction per request.",
                ),
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
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
