"""Calling an ASGI app in-process: one request in, the whole response out, no sockets.

The fuzzer sends thousands of requests; going through uvicorn and a TCP connection for each would spend
most of the time in the HTTP stack instead of the code under test. ``call`` plays the server's part: it
hands the body over in one ``http.request`` message, collects ``http.response.*`` messages, and only
reports ``http.disconnect`` once the response has ended, as a well-behaved client would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from llm_proxy.app.exchange import Message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Lower-cased names; repeated headers keep the last value (enough for content type and error type)."""
    body: bytes
    ended: bool
    """The app sent the final body message (``more_body`` false)."""


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, *, timeout: float
) -> Answer:
    """Send one request to ``app``; raise ``TimeoutError`` if the response has not ended within ``timeout``."""
    raw_path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path, errors="surrogateescape"),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    done = asyncio.Event()
    delivered = False
    status = 0
    response_headers: dict[str, str] = {}
    parts: list[bytes] = []
    ended = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, ended
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", []):
                response_headers[bytes(key).decode("latin-1").lower()] = bytes(value).decode("latin-1")
        elif message["type"] == "http.response.body":
            parts.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                ended = True
                done.set()

    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
    finally:
        done.set()
    return Answer(status=status, headers=response_headers, body=b"".join(parts), ended=ended)
