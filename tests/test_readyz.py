"""``/readyz``: 503 until the app has started (upstream client made), 200 while it serves, 503 after shutdown.

Driven through the ASGI interface directly, so each lifespan step can be observed in between. During a drain
the listening socket is already closed (tests/container/ checks that on a real container), so a probe cannot
connect at all: that counts as not ready too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llm_proxy.app.exchange import Message
from llm_proxy.app.server import ProxyApp
from tests.servers import make_config

MOCK_ROUTE = {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://"}


async def get(app: ProxyApp, path: str) -> tuple[int, bytes]:
    """Status and body of a GET answered by the app."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:])


async def test_readyz_follows_the_lifespan() -> None:
    app = ProxyApp(make_config([MOCK_ROUTE]))
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))

    assert await get(app, "/readyz") == (503, b"not ready")
    assert await get(app, "/healthz") == (200, b"OK")  # alive, yet not ready

    await inbox.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 5))["type"] == "lifespan.startup.complete"
    assert app.upstream.opened  # made at startup, not on the first request
    assert await get(app, "/readyz") == (200, b"OK")

    await inbox.put({"type": "lifespan.shutdown"})
    assert (await asyncio.wait_for(outbox.get(), 5))["type"] == "lifespan.shutdown.complete"
    await asyncio.wait_for(lifespan, 5)
    assert await get(app, "/readyz") == (503, b"not ready")


@asynccontextmanager
async def lifespan(app: ProxyApp) -> AsyncIterator[None]:
    """The app started (lifespan startup done) for the block, shut down after it."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 5))["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await asyncio.wait_for(outbox.get(), 5))["type"] == "lifespan.shutdown.complete"
        await asyncio.wait_for(task, 5)
