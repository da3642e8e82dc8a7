"""``python -m bench.minimal_rsgi --port N --upstream URL``: the minimal proxy on granian's RSGI interface.

A yardstick for llm-proxy's proxy mode (see ``bench.minimal``). granian runs it in a worker process that
imports ``from_env`` by name, so the settings travel in the environment (``bench.minimal.ENV``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.minimal import ENV, Settings, reply_headers, session


class MinimalRsgi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: aiohttp.ClientSession | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        async def make() -> aiohttp.ClientSession:
            return session()

        self.client = loop.run_until_complete(make())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.client is not None:
            loop.run_until_complete(self.client.close())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        if scope.path == "/healthz":
            proto.response_bytes(200, [("content-length", "2")], b"OK")
            return
        body = await proto()
        assert self.client is not None
        s = self.settings
        url = s.url(scope.path, scope.query_string)
        async with self.client.request(
            scope.method, url, data=s.body(body), headers=s.headers(scope.headers.items())
        ) as resp:
            transport = proto.response_stream(resp.status, reply_headers(resp))
            async for chunk in resp.content.iter_any():
                await transport.send_bytes(chunk)


def from_env() -> MinimalRsgi:
    return MinimalRsgi(Settings.from_env())


def main(argv: Sequence[str] | None = None) -> int:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    from bench.minimal import parse

    options, settings = parse("python -m bench.minimal_rsgi", __doc__, argv)
    os.environ[ENV] = settings.to_env()
    Granian(
        "bench.minimal_rsgi:from_env", address=options.host, port=options.port, interface=Interfaces.RSGI,
        factory=True, workers=1, loop=Loops.uvloop, websockets=False, backlog=4096, backpressure=4096,
        log_level=LogLevels.warning, log_access=False,
    ).serve()  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
