"""A streamed answer is relayed without the request: once the upstream has answered (proxy mode) or the request is
decoded (translation), neither the request's bytes nor its parsed body stay referenced by the proxy. A stream can
last minutes; 1,000 of them would otherwise keep ~17 KB each of a 5 KB request (``app.exchange.RequestBody``)."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from typing import Any

import pytest

from llm_proxy.app.exchange import Message
from llm_proxy.app.server import ProxyApp
from llm_proxy.upstream.client import UpstreamCall
from llm_proxy.upstream.mock import MockOptions, MockUpstream
from tests.servers import make_config

MARKER = "release-marker-5d1c"
"""In the request's text: a parsed body still alive is a dict whose messages hold it."""

ROUTES: dict[str, dict[str, Any]] = {
    "proxy mode, one backend": {"frontend_base_url": "/p", "backend_base_url": "mock://", "backend_model_name": "b"},
    "proxy mode, a pool with retries": {
        "frontend_base_url": "/p",
        "retries": 1,
        "backends": [
            {"name": "a", "backend_base_url": "mock://", "backend_model_name": "b"},
            {"name": "b", "backend_base_url": "mock://", "backend_model_name": "b"},
        ],
    },
    "translation": {
        "frontend_base_url": "/p",
        "frontend_dialect": "claude",
        "backend_dialect": "openai-chat",
        "backend_base_url": "mock://",
        "backend_model_name": "b",
    },
}


def _parsed_bodies_alive() -> int:
    """Parsed request bodies, and upstream calls (which hold the upstream's copy of the bytes), still alive."""
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if type(o) is UpstreamCall
        or (type(o) is dict and isinstance(o.get("messages"), list) and MARKER in json.dumps(o.get("messages")))
    )


async def _held_mid_stream(app: ProxyApp, path: str, body: bytes) -> tuple[int, int, int]:
    """References to ``body`` the app holds, and parsed bodies and upstream calls alive, at the first streamed chunk;
    the chunks sent."""
    delivered = False
    chunks = 0
    held: list[tuple[int, int]] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal chunks
        if message["type"] == "http.response.body" and message.get("body"):
            chunks += 1
            if not held:
                held.append((sys.getrefcount(body) - base, _parsed_bodies_alive()))

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    base = sys.getrefcount(body)
    await app(scope, receive, send)
    assert held, "no streamed chunk reached the client"
    return held[0][0], held[0][1], chunks


def _request(case: str) -> tuple[str, bytes]:
    """The path and body of a streamed request for ``case`` (its parsed form not kept here)."""
    messages = [{"role": "user", "content": f"say something {MARKER}"}]
    if case == "translation":
        return "/p/v1/messages", json.dumps(
            {"model": "m", "max_tokens": 64, "stream": True, "messages": messages}
        ).encode()
    return "/p/v1/chat/completions", json.dumps({"model": "m", "stream": True, "messages": messages}).encode()


@pytest.mark.parametrize("case", list(ROUTES))
def test_nothing_of_the_request_is_held_while_the_answer_streams(case: str) -> None:
    route = {"frontend_model_name": "m", **ROUTES[case]}
    app = ProxyApp(make_config([route]), mock=MockUpstream(MockOptions(delay=0.002, events=5)))
    path, body = _request(case)
    assert _parsed_bodies_alive() == 0
    references, parsed, chunks = asyncio.run(_held_mid_stream(app, path, body))
    assert (references, parsed) == (0, 0)
    assert chunks >= 5  # it was a stream, looked at in its middle
