"""``python -m bench.callgrind_request``: the proxy's CPU cost per request, counted in instructions by callgrind.

Wall-clock benchmarks on a shared two-core machine move by ±20% from run to run; instruction counts do not
depend on the load. This script drives the ASGI app in-process (no sockets, no HTTP server): a scope, a
``receive`` that hands over the body, a ``send`` that drops what it is given, and a stub upstream transport
that answers every call with the same bytes (made once by the embedded mock). Only the proxy's own request
path runs, the way uvicorn would call it, on uvloop.

Run it under callgrind twice, with ``N`` and ``2N`` requests, and take the difference over ``N``: start-up,
imports and the first request's caches cancel out. The heap left by start-up and a few warm-up requests is
frozen (``gc.freeze``) first, so that full collections walk only what the requests allocate.
``--measure`` does exactly that::

    python -m bench.callgrind_request --measure                       # every scenario, N = 200
    python -m bench.callgrind_request --measure proxy proxy-json-log  # some of them
    valgrind --tool=callgrind python -m bench.callgrind_request proxy 400   # one run, for callgrind_annotate

Scenarios (all proxy mode, openai-chat, ~5 KB request, ~1 KB answer with usage, unless named otherwise):

- ``proxy-bare``: the request path with metrics recorded nowhere (a stand-in that ignores them), access log off
- ``proxy``: as shipped, metrics on, access log off
- ``proxy-text-log`` / ``proxy-json-log``: plus the access line, text or JSON (to a null stream)
- ``proxy-keys``: plus client keys (20 keys, a requests-per-minute limit)
- ``proxy-retries``: a route with ``retries: 2`` (the attempt loop instead of the short path)
- ``proxy-pool``: the every-feature-on contender's route: client keys and a pool of two backends with one retry
- ``proxy-all``: metrics, JSON access log, client keys and retries together
- ``stream-chat`` / ``stream-claude``: streamed passthrough, 200 deltas per answer (per-event cost: divide)
- ``stream-translate`` / ``stream-translate-chat``: streamed translation, 200 deltas per answer: a claude client in
  front of an openai-chat backend, and an openai-chat client in front of a claude backend
- ``translate``: a claude client in front of an openai-chat backend, not streamed
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import orjson
import uvloop
from multidict import CIMultiDict, CIMultiDictProxy

from bench.null_metrics import without_metrics
from bench.payloads import chat_request
from llm_proxy.app.exchange import Message
from llm_proxy.app.server import ProxyApp
from llm_proxy.config import Config, parse_config
from llm_proxy.upstream.headers import RawHeaders
from llm_proxy.upstream.mock import MockOptions, MockUpstream

ROOT = Path(__file__).resolve().parent.parent
ROUTE_KEY = "sk-route-key-0000000000000000"
CLIENT_KEY = "lpk-bench-user-0007-0123456789abcdef"
TEXT = "The measurements look steady; nothing unusual stands out in latency or throughput. " * 10
CLAUDE_REQUEST = orjson.dumps(
    {
        "model": "claude-x",
        "max_tokens": 512,
        "system": "You are a careful assistant that answers questions about software performance. " * 24,
        "messages": [{"role": "user", "content": "Summarise the measurements below. " + "latency=1.2ms " * 300}],
    }
)


class _Content:
    """An aiohttp ``StreamReader`` stand-in: the recorded chunks, as they would arrive (one reader per response)."""

    __slots__ = ("_chunks", "_next")

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self._next = 0

    async def readany(self) -> bytes:
        """The next chunk; ``b""`` at the end, as aiohttp's reader."""
        n = self._next
        if n == len(self._chunks):
            return b""
        self._next = n + 1
        return self._chunks[n]

    async def iter_any(self) -> AsyncIterator[bytes]:
        while chunk := await self.readany():
            yield chunk


class _ClientResponse:
    """What ``aiohttp.ClientSession.request`` returns, as far as ``upstream.client`` reads it."""

    __slots__ = ("status", "raw_headers", "headers", "content")

    def __init__(
        self,
        status: int,
        raw_headers: tuple[tuple[bytes, bytes], ...],
        headers: CIMultiDictProxy[str],
        chunks: list[bytes],
    ) -> None:
        self.status = status
        self.raw_headers = raw_headers
        self.headers = headers
        self.content = _Content(chunks)

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class StubSession:
    """An ``aiohttp.ClientSession`` that answers every request with one recorded answer, without a socket."""

    def __init__(self, status: int, raw_headers: RawHeaders, chunks: list[bytes]) -> None:
        # Made once: aiohttp's parser builds these for every response, and that is aiohttp's cost, not the proxy's.
        headers = CIMultiDictProxy(CIMultiDict((k.decode(), v.decode()) for k, v in raw_headers))
        self._answer = (status, tuple(raw_headers), headers, chunks)

    async def request(self, method: str, url: object, **kwargs: object) -> _ClientResponse:
        return _ClientResponse(*self._answer)

    async def close(self) -> None:
        return None


def recorded(path: str, body: bytes, events: int | None = None) -> StubSession:
    """What the embedded mock answers to ``body`` on ``path``, with the headers a real upstream adds."""
    mock = MockUpstream(MockOptions(events=events, response_bytes=len(TEXT)))
    answer = mock.answer("POST", path, [], body)
    chunks = list(answer._chunks)
    headers: RawHeaders = [
        *answer.raw_headers,
        (b"date", b"Fri, 27 Nov 2026 17:00:00 GMT"),
        (b"server", b"uvicorn"),
        (b"x-request-id", b"req_0123456789abcdef0123456789abcdef"),
        (b"openai-processing-ms", b"412"),
    ]
    return StubSession(answer.status, headers, chunks)


@dataclass
class Scenario:
    path: str
    body: bytes
    upstream_path: str
    upstream_body: bytes
    route: dict[str, Any]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    events: int | None = None
    keys: bool = False
    log_format: str | None = None
    """``text`` or ``json`` for an access line per request; None: access log off."""
    metrics: bool = True


def _route(**extra: Any) -> dict[str, Any]:
    return {
        "frontend_model_name": "bench-model",
        "frontend_base_url": "/openai",
        "backend_model_name": "upstream-model",
        "backend_base_url": "http://upstream.bench:8000",
        "backend_api_key": ROUTE_KEY,
        **extra,
    }


def _pool() -> dict[str, Any]:
    """The every-feature-on contender's route (``bench.contenders.proxy_config``): two backends, one retry."""
    route = _route(retries=1)
    backend = {k: route.pop(k) for k in list(route) if k.startswith("backend_")}
    route["backends"] = [{"name": "a", **backend}, {"name": "b", **backend}]
    return route


CHAT_BODY = chat_request("bench-model")
CHAT_UPSTREAM = chat_request("upstream-model")
CHAT_STREAM = orjson.dumps(
    {**orjson.loads(chat_request("bench-model", stream=True)), "stream_options": {"include_usage": True}}
)
CHAT_STREAM_UPSTREAM = CHAT_STREAM.replace(b'"bench-model"', b'"upstream-model"')
_HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"user-agent", b"OpenAI/Python 1.99.0"),
    (b"accept", b"application/json"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-client-0000000000000000"),
]
_KEY_HEADERS = [*_HEADERS[:-1], (b"authorization", f"Bearer {CLIENT_KEY}".encode())]


def scenarios() -> dict[str, Scenario]:
    chat = "/openai/v1/chat/completions"
    up = "/v1/chat/completions"
    proxy = Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(), _HEADERS)
    claude_stream = orjson.dumps({**orjson.loads(CLAUDE_REQUEST), "stream": True})
    claude_headers = [
        *_HEADERS[:-1],
        (b"x-api-key", b"sk-ant-client-000000000000"),
        (b"anthropic-version", b"2023-06-01"),
    ]
    claude_to_chat = _route(
        frontend_model_name="claude-x",
        frontend_base_url="/claude",
        frontend_dialect="claude",
        backend_dialect="openai-chat",
    )
    return {
        "proxy-bare": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(), _HEADERS, metrics=False),
        "proxy": proxy,
        "proxy-text-log": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(), _HEADERS, log_format="text"),
        "proxy-json-log": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(), _HEADERS, log_format="json"),
        "proxy-keys": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(), _KEY_HEADERS, keys=True),
        "proxy-retries": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(retries=2), _HEADERS),
        "proxy-pool": Scenario(chat, CHAT_BODY, up, CHAT_UPSTREAM, _pool(), _KEY_HEADERS, keys=True),
        "proxy-all": Scenario(
            chat, CHAT_BODY, up, CHAT_UPSTREAM, _route(retries=2), _KEY_HEADERS, keys=True, log_format="json"
        ),
        "stream-chat": Scenario(chat, CHAT_STREAM, up, CHAT_STREAM_UPSTREAM, _route(), _HEADERS, 200),
        "stream-claude": Scenario(
            "/claude/v1/messages",
            orjson.dumps({**orjson.loads(claude_stream), "model": "claude-x"}),
            "/v1/messages",
            claude_stream,
            _route(frontend_model_name="claude-x", frontend_base_url="/claude"),
            claude_headers,
            200,
        ),
        "stream-translate": Scenario(
            "/claude/v1/messages", claude_stream, up, CHAT_STREAM_UPSTREAM, claude_to_chat, claude_headers, 200
        ),
        "stream-translate-chat": Scenario(
            chat,
            CHAT_STREAM,
            "/v1/messages",
            orjson.dumps({**orjson.loads(claude_stream), "model": "upstream-model"}),
            _route(frontend_dialect="openai-chat", backend_dialect="claude"),
            _HEADERS,
            200,
        ),
        "translate": Scenario("/claude/v1/messages", CLAUDE_REQUEST, up, CHAT_UPSTREAM, claude_to_chat, claude_headers),
    }


def build(scenario: Scenario) -> tuple[ProxyApp, Callable[[], dict[str, Any]]]:
    raw: dict[str, Any] = {"models": [scenario.route]}
    if scenario.keys:
        raw["client_keys"] = [
            {"name": f"user{i:04d}", "key": f"lpk-bench-user-{i:04d}-0123456789abcdef", "requests_per_minute": 10**9}
            for i in range(20)
        ]
    config: Config = parse_config(raw, "bench.yaml", {})
    _logging(scenario.log_format)
    app = ProxyApp(config)
    # The network transport as shipped, over a session that answers without a socket.
    app.upstream._http._session = recorded(scenario.upstream_path, scenario.upstream_body, scenario.events)  # type: ignore[assignment]
    if not scenario.metrics:
        without_metrics(app)
    raw_path, _, query = scenario.path.partition("?")

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [*scenario.headers, (b"content-length", str(len(scenario.body)).encode())],
        }

    return app, scope


def _logging(log_format: str | None) -> None:
    """The access line to a null stream, formatted and written as ``app.serve`` would; off when ``log_format`` is
    None."""
    from llm_proxy.app.serve import configure_logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # the proxy's own handler (``observe.held_lines``), to a stream that drops what it is given
    level = "info" if log_format else "warning"
    configure_logging(level, log_format is not None, None, log_format or "text", cast(TextIO, _Null()))


class _Null(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class _Client:
    """One request's client: the body at the first ``receive``, then nothing until the app stops waiting."""

    __slots__ = ("_body", "_delivered", "_never", "status", "ended")

    def __init__(self, body: bytes, never: asyncio.Future[None]) -> None:
        self._body = body
        self._delivered = False
        self._never = never
        self.status = 0
        self.ended = False

    async def receive(self) -> Message:
        if not self._delivered:
            self._delivered = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._never  # uvicorn's receive waits for the client likewise; the app cancels it at the end
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif not message.get("more_body", False):
            self.ended = True


async def drive(app: ProxyApp, scope: Callable[[], dict[str, Any]], body: bytes, n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        client = _Client(body, loop.create_future())
        await app(scope(), client.receive, client.send)
        if client.status != 200 or not client.ended:  # a body cut by an error would count the error path
            raise SystemExit(f"request answered {client.status}" + ("" if client.ended else ", its body cut"))


WARM_UP = 5
"""Requests before the counted ones: the first request's imports and caches are made, then frozen (below)."""


def run(name: str, n: int) -> None:
    scenario = scenarios()[name]
    app, scope = build(scenario)
    uvloop.run(drive(app, scope, scenario.body, WARM_UP))
    # The start-up heap out of the collector's reach: a full collection walks all of it, and whether the run of
    # N or of 2N requests happens to cross one more moves the difference by ±100k instructions per request.
    gc.collect()
    gc.freeze()
    uvloop.run(drive(app, scope, scenario.body, n))


_TOTAL = re.compile(r"^summary:\s+(\d+)", re.M)


def count(name: str, n: int) -> int:
    """Instructions callgrind counts for a run of ``n`` requests of ``name`` (a fixed hash seed: repeatable)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        subprocess.run(
            [*command, "-m", "bench.callgrind_request", name, str(n)], check=True, capture_output=True, env=env
        )
        with open(out) as f:
            match = _TOTAL.search(f.read())
    if match is None:
        raise SystemExit(f"no summary in callgrind's output for {name}")
    return int(match.group(1))


def per_request(name: str, n: int) -> float:
    """Instructions per request of ``name``: runs of ``n`` and ``2n`` requests, the difference over ``n``."""
    with ThreadPoolExecutor(2) as pool:
        small, large = pool.map(lambda k: count(name, k), (n, 2 * n))
    return (large - small) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind_request", description=__doc__)
    parser.add_argument("--measure", action="store_true", help="run callgrind at N and 2N, print per request")
    parser.add_argument("-n", type=int, default=200, help="requests of the smaller run (with --measure)")
    parser.add_argument("args", nargs="*", help="scenario names (with --measure), else: scenario N")
    options = parser.parse_args(argv)
    if not options.measure:
        name, n = options.args
        run(name, int(n))
        return 0
    for name in options.args or list(scenarios()):
        print(f"{name:16} {per_request(name, options.n):>12,.0f} instructions per request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
