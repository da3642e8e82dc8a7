"""Real servers for end-to-end tests: the proxy and fake upstreams, on ephemeral 127.0.0.1 ports.

Each server runs uvicorn in its own thread and event loop (like httpx's ``serve_in_thread``), so the
official synchronous SDKs can be used as clients from the test thread. The loop is uvloop, as in
production: on the plain asyncio loop each proxied request stalled about 40 ms between the proxy's aiohttp
client and these servers, which made latency figures measured with them meaningless.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import uvicorn
import yaml

from llm_proxy.app.exchange import Message, Receive, Scope, Send
from llm_proxy.app.server import ProxyApp
from llm_proxy.config import Config, parse_config


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, loop="uvloop", http="httptools", lifespan="on", log_config=None, access_log=False, ws="none"
        )
        config.timeout_graceful_shutdown = 2
        # The SDK clients of a test module keep their connections between tests (max_retries=0): with uvicorn's
        # 5 s idle timeout, a test that starts as the server closes a pooled connection got "Server disconnected
        # without sending a response" (seen once in a full run). Idle connections stay open while the server runs.
        config.timeout_keep_alive = 3600
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server thread died during startup")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes


Handler = Callable[[Recorded, "Reply"], Awaitable[None]]


class Reply:
    """What a recording upstream handler uses to answer."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send = send
        self._receive = receive

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        raw = [(k.encode(), v.encode()) for k, v in headers]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def chunk(self, data: bytes, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        await self.start(status, [("content-type", "application/json"), *(headers or [])])
        await self.chunk(body, more=False)

    async def wait_disconnect(self, timeout: float) -> bool:
        """True if the client (the proxy) closed the connection within ``timeout`` seconds."""
        try:
            message: Message = await asyncio.wait_for(self._receive(), timeout)
        except TimeoutError:
            return False
        return bool(message["type"] == "http.disconnect")


@dataclass
class RecordingUpstream:
    """An upstream that records every request and answers with ``handler`` (default: a fixed JSON)."""

    handler: Handler | None = None
    requests: list[Recorded] = field(default_factory=list)
    events: dict[str, threading.Event] = field(default_factory=dict)

    def event(self, name: str) -> threading.Event:
        return self.events.setdefault(name, threading.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"] + ".complete"
                await send({"type": done})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        recorded = Recorded(
            method=scope["method"],
            path=raw_path.decode("latin-1"),
            query=scope["query_string"].decode("latin-1"),
            headers={k.lower(): v for k, v in raw},
            raw_headers=raw,
            body=body,
        )
        self.requests.append(recorded)
        reply = Reply(send, receive)
        if self.handler is None:
            await reply.json(200, b'{"ok":true}')
        else:
            await self.handler(recorded, reply)


def make_config(models: list[dict[str, Any]], server: dict[str, Any] | None = None) -> Config:
    return parse_config({"server": server or {}, "models": models}, "test.yaml", {})


@contextmanager
def running_proxy(config: Config) -> Iterator[ServerThread]:
    with ServerThread(ProxyApp(config)) as server:
        yield server


@contextmanager
def running_upstream(upstream: RecordingUpstream) -> Iterator[ServerThread]:
    with ServerThread(upstream) as server:
        yield server


def write_config(tmp: Path, models: list[dict[str, Any]], server: dict[str, Any] | None = None) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump({"server": server or {}, "models": models}, sort_keys=False))
    return path


_sdk_clients: list[Any] = []


def sdk_openai(**kwargs: Any) -> Any:
    """An official OpenAI SDK client, closed after the test (``conftest.close_sdk_clients``).

    Typed ``Any``: the SDKs' strict TypedDict parameters are not what these tests check.
    """
    client = openai.OpenAI(**kwargs)
    _sdk_clients.append(client)
    return client


def sdk_anthropic(**kwargs: Any) -> Any:
    """An official Anthropic SDK client, closed after the test."""
    client = anthropic.Anthropic(**kwargs)
    _sdk_clients.append(client)
    return client


def close_sdk_clients() -> None:
    while _sdk_clients:
        _sdk_clients.pop().close()


@contextmanager
def ends_on_sigterm(proc: subprocess.Popen[bytes], timeout: float = 30) -> Iterator[None]:
    """Runs the body against a started proxy process, then sends it SIGTERM and asserts a clean exit (status 0)
    within ``timeout`` seconds; a process still running after a failure is killed, by its PID, and reaped."""
    try:
        yield
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
