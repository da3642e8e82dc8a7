"""``python -m bench.minimal_asgi --port N --upstream URL``: the minimal proxy on uvicorn (raw ASGI, uvloop, httptools).

A yardstick for llm-proxy's proxy mode (see ``bench.minimal``): the same server stack, and nothing but the job.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import aiohttp
import uvicorn

from bench.minimal import Settings, reply_headers, session

Message = MutableMapping[str, Any]


class MinimalAsgi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: aiohttp.ClientSession | None = None

    async def __call__(
        self, scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.client = session()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.client is not None:
                        await self.client.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"OK"})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        assert self.client is not None
        s = self.settings
        headers = s.headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        url = s.url(scope["path"], scope["query_string"].decode("latin-1"))
        async with self.client.request(scope["method"], url, data=s.body(b"".join(chunks)), headers=headers) as resp:
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply_headers(resp)]
            await send({"type": "http.response.start", "status": resp.status, "headers": raw})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def main(argv: Sequence[str] | None = None) -> int:
    from bench.minimal import parse

    options, settings = parse("python -m bench.minimal_asgi", __doc__, argv)
    uvicorn.run(
        MinimalAsgi(settings), host=options.host, port=options.port, loop="uvloop", http="httptools", ws="none",
        lifespan="on", access_log=False, log_level="warning", backlog=4096, server_header=False, proxy_headers=False,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
