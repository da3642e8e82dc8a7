"""The proxy served by granian's RSGI interface (``server.interface: rsgi``) behaves as on uvicorn.

The proxy runs as the CLI runs it (``python -m llm_proxy``, granian's embedded server), in front of a recording
upstream in this process: plain and streamed answers, a translated stream, errors in the client's dialect, the
body limit, ``/healthz``, ``/readyz``, ``/metrics``, a client that leaves mid-stream (the upstream connection is
closed and the request counted as 499), a clean exit on SIGTERM, and two worker processes sharing the port and
the metrics.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from llm_proxy.app.disconnect import WATCH_AFTER
from tests.servers import Recorded, RecordingUpstream, Reply, ServerThread, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian is not installed")

CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "up-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    doc = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + orjson.dumps(doc) + b"\n\n"


CHAT_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    *(_chunk({"content": f"part{i} "}) for i in range(20)),
    _chunk({}, "stop"),
    b"data: [DONE]\n\n",
]


async def _upstream(recorded: Recorded, reply: Reply) -> None:
    body = orjson.loads(recorded.body) if recorded.body else {}
    content = body.get("messages", [{}])[-1].get("content", "")
    if content == "slow":
        await reply.start(200, [("content-type", "text/event-stream")])
        await reply.chunk(CHAT_STREAM[0])
        if await reply.wait_disconnect(10):
            UPSTREAM.event("slow-closed").set()
        return
    if content == "paced":  # a stream that outlives the disconnect watch's start (``WATCH_AFTER``)
        await reply.start(200, [("content-type", "text/event-stream")])
        for event in CHAT_STREAM:
            await reply.chunk(event)
            await asyncio.sleep(PACE)
        await reply.chunk(b"", more=False)
        return
    if content == "busy":
        await reply.json(429, b'{"error":{"message":"slow down","type":"rate_limit_error"}}', [("retry-after", "1")])
        return
    if body.get("stream"):
        await reply.start(200, [("content-type", "text/event-stream")])
        for event in CHAT_STREAM:
            await reply.chunk(event)
        await reply.chunk(b"", more=False)
        return
    await reply.json(200, orjson.dumps(CHAT_REPLY))


UPSTREAM = RecordingUpstream(_upstream)
PACE = 2 * WATCH_AFTER / len(CHAT_STREAM)
"""Seconds between the events of a ``paced`` stream: it lasts twice ``WATCH_AFTER``."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proxy:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
            conn.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@contextmanager
def _proxy_process(config: Path) -> Iterator[Proxy]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "llm_proxy", "--config", str(config), "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_healthy(port, proc)
        yield Proxy(port, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("rsgi")
    with ServerThread(UPSTREAM) as upstream:
        models = [
            {"frontend_model_name": "m", "frontend_base_url": "/openai", "backend_base_url": upstream.url,
             "backend_model_name": "up-model", "backend_api_key": "sk-upstream"},
            {"frontend_model_name": "m", "frontend_base_url": "/claude", "frontend_dialect": "claude",
             "backend_dialect": "openai-chat", "backend_base_url": upstream.url, "backend_model_name": "up-model",
             "backend_api_key": "sk-upstream"},
        ]  # fmt: skip
        server = {"interface": "rsgi", "log_level": "warning", "max_body_size": 4096}
        with _proxy_process(write_config(tmp, models, server)) as running:
            yield running


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else proc.returncode
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.02)
        finally:
            conn.close()
    raise AssertionError("the proxy did not answer /healthz")


def test_health_and_ready(proxy: Proxy) -> None:
    assert proxy.request("GET", "/healthz")[::2] == (200, b"OK")
    assert proxy.request("GET", "/readyz")[::2] == (200, b"OK")


def test_plain_request_is_rewritten_and_answered(proxy: Proxy) -> None:
    before = len(UPSTREAM.requests)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    status, headers, data = proxy.request(
        "POST", "/openai/v1/chat/completions?x=1", body, {"authorization": "Bearer client"}
    )
    assert status == 200
    assert orjson.loads(data) == CHAT_REPLY
    assert headers["x-request-id"]
    sent = UPSTREAM.requests[before]
    assert sent.path == "/v1/chat/completions" and sent.query == "x=1"
    assert orjson.loads(sent.body)["model"] == "up-model"
    assert sent.headers["authorization"] == "Bearer sk-upstream"


def test_streamed_passthrough_arrives_whole(proxy: Proxy) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, data = proxy.request("POST", "/openai/v1/chat/completions", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert data == b"".join(CHAT_STREAM)


def test_streamed_translation_to_claude(proxy: Proxy) -> None:
    body = {"model": "m", "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    status, _, data = proxy.request("POST", "/claude/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert status == 200
    assert data.count(b"event: content_block_delta") >= 20
    assert b"part19" in data and data.rstrip().endswith(b'data: {"type":"message_stop"}')


@pytest.mark.parametrize("path", ["/openai/v1/chat/completions", "/claude/v1/messages"])
def test_a_stream_longer_than_the_disconnect_watch_delay_ends(proxy: Proxy, path: str) -> None:
    """granian ends a streamed body when its transport object is freed. A stream that lasts past ``WATCH_AFTER``
    has a disconnect watch, whose cancelled task once kept the transport in a reference cycle: the end of the
    body then waited for a garbage collection (none comes to an idle server), and the client hung."""
    body = {"model": "m", "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": "paced"}]}
    started = time.monotonic()
    status, _, data = proxy.request("POST", path, body, {"anthropic-version": "2023-06-01"}, timeout=5)
    assert status == 200 and time.monotonic() - started < 3
    if path.startswith("/openai"):
        assert data == b"".join(CHAT_STREAM)
    else:
        assert b"part19" in data and data.rstrip().endswith(b'data: {"type":"message_stop"}')


def test_errors_in_the_client_dialect(proxy: Proxy) -> None:
    status, _, data = proxy.request("POST", "/openai/v1/chat/completions", {"model": "nope", "messages": []})
    assert status == 404 and orjson.loads(data)["error"]["code"] == "model_not_found"
    status, _, data = proxy.request(
        "POST", "/claude/v1/messages", {"model": "nope", "max_tokens": 5, "messages": []},
        {"anthropic-version": "2023-06-01"},
    )  # fmt: skip
    assert status == 404 and orjson.loads(data)["type"] == "error"
    busy = {"model": "m", "messages": [{"role": "user", "content": "busy"}]}
    status, headers, data = proxy.request("POST", "/openai/v1/chat/completions", busy)
    assert status == 429 and headers["retry-after"] == "1" and b"slow down" in data
    status, _, data = proxy.request("POST", "/openai/v1/chat/completions", b"x" * 10_000)
    assert status == 413 and b"larger than 4096 bytes" in data


def test_client_leaving_mid_stream_closes_the_upstream_call(proxy: Proxy) -> None:
    body = orjson.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "slow"}]})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        head = (
            f"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        received = b""
        while b"data:" not in received:
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
    assert UPSTREAM.event("slow-closed").wait(10), "the proxy kept the upstream call open"
    deadline = time.monotonic() + 5
    while b'status="499"' not in proxy.request("GET", "/metrics")[2]:
        assert time.monotonic() < deadline, "the request was not counted as 499"
        time.sleep(0.05)


def test_metrics(proxy: Proxy) -> None:
    status, headers, data = proxy.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b'llm_proxy_requests_total{backend="0",client="-",model="m",prefix="/openai",status="200"}' in data


def test_sigterm_exits_cleanly(proxy: Proxy) -> None:
    # last in this module: it stops the shared proxy
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(15) == 0


def test_workers_share_the_port_and_the_metrics(tmp_path: Path) -> None:
    models = [{"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://"}]
    config = write_config(tmp_path, models, {"interface": "rsgi", "workers": 2, "log_level": "warning"})
    with _proxy_process(config) as proxy:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(6):
            assert proxy.request("POST", "/p/v1/chat/completions", body)[0] == 200
        # each worker writes its counts to the shared directory; any worker's scrape sums them. A request is
        # counted once its response has ended, so the last one may be counted just after its client read it.
        deadline = time.monotonic() + 5
        while b'prefix="/p",status="200"} 6.0' not in (metrics := proxy.request("GET", "/metrics")[2]):
            assert time.monotonic() < deadline, metrics.decode()
            time.sleep(0.05)
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(30) == 0
