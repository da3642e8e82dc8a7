"""Observability end to end: metric values after scripted traffic, request ids, JSON access lines, no key in any log.

A real proxy (uvicorn in a thread) in front of recording upstreams; ``/metrics`` scraped over HTTP and parsed
with prometheus_client's own parser, so names, types and labels are checked as a scraper sees them.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llm_proxy.app.exchange import Exchange
from llm_proxy.app.server import ProxyApp
from llm_proxy.canonical import Usage
from llm_proxy.observe.logs import ACCESS_FIELDS, FIELDS, RequestIdFilter, formatter
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    ends_on_sigterm,
    make_config,
    running_upstream,
    write_config,
)
from tests.test_cli import free_port, wait_healthy

KEY = "sk-observed-key-000000000000007e1d"
FIRST_TOKEN_DELAY = 0.3
"""The streaming upstream waits this long before its first content chunk: TTFT lands in the (0.25, 0.5] bucket."""

CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _chunk(**fields: object) -> bytes:
    envelope = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "upstream-model", **fields}
    return b"data: " + orjson.dumps(envelope) + b"\n\n"


STREAM_USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


async def chat_upstream(req: Recorded, reply: Reply) -> None:
    """OpenAI Chat: a JSON answer, or a stream whose first content comes after ``FIRST_TOKEN_DELAY``."""
    body = json.loads(req.body)
    if body.get("model") == "broken":
        await reply.json(503, b'{"error": {"message": "busy", "type": "server_error"}}')
        return
    if not body.get("stream"):
        await reply.json(200, orjson.dumps(CHAT_REPLY))
        return
    await reply.start(200, [("content-type", "text/event-stream")])
    await reply.chunk(_chunk(choices=[{"index": 0, "delta": {"role": "assistant"}}]))
    await asyncio.sleep(FIRST_TOKEN_DELAY)
    await reply.chunk(_chunk(choices=[{"index": 0, "delta": {"content": "hi"}}]))
    await reply.chunk(_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    await reply.chunk(_chunk(choices=[], usage=STREAM_USAGE))
    await reply.chunk(b"data: [DONE]\n\n", more=False)


def request(
    port: int, path: str, body: object = None, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by name and label set."""
    status, headers, body = request(port, "/metrics", method="GET")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def routes(upstream: ServerThread, bad: ServerThread) -> list[dict[str, object]]:
    return [
        {
            "frontend_model_name": "chat-*",
            "frontend_base_url": "/openai",
            "backend_model_name": "upstream-model",
            "backend_base_url": upstream.url,
            "backend_api_key": KEY,
        },
        {
            "frontend_model_name": "claude-x",
            "frontend_base_url": "/claude",
            "frontend_dialect": "claude",
            "backend_dialect": "openai-chat",
            "backend_model_name": "upstream-model",
            "backend_base_url": upstream.url,
            "backend_api_key": KEY,
        },
        {
            "frontend_model_name": "pooled",
            "frontend_base_url": "/openai",
            "retries": 1,
            "backends": [
                {"name": "bad", "backend_base_url": bad.url, "backend_model_name": "broken", "weight": 1e9},
                {"name": "good", "backend_base_url": upstream.url, "backend_model_name": "m", "weight": 1e-9},
            ],
        },
        {
            "frontend_model_name": "down",
            "frontend_base_url": "/openai",
            "backend_model_name": "broken",
            "backend_base_url": bad.url,
        },
    ]


@pytest.fixture
def upstreams() -> Iterator[tuple[RecordingUpstream, ServerThread, ServerThread]]:
    fake = RecordingUpstream(chat_upstream)
    with running_upstream(fake) as good, running_upstream(RecordingUpstream(chat_upstream)) as bad:
        yield fake, good, bad


CHAT = {"messages": [{"role": "user", "content": "hello"}]}
CLAUDE = {"model": "claude-x", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hello"}]}


def test_metrics_after_scripted_traffic(upstreams: tuple[RecordingUpstream, ServerThread, ServerThread]) -> None:
    _, good, bad = upstreams
    with ServerThread(ProxyApp(make_config(routes(good, bad)))) as proxy:
        for model in ("chat-a", "chat-b"):
            assert request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": model})[0] == 200
        status, headers, body = request(
            proxy.port,
            "/openai/v1/chat/completions",
            {**CHAT, "model": "chat-s", "stream": True, "stream_options": {"include_usage": True}},
        )
        assert status == 200 and b"[DONE]" in body
        status, headers, body = request(proxy.port, "/claude/v1/messages", CLAUDE)
        assert status == 200 and b"message_stop" in body
        status, headers, _ = request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "pooled"})
        assert status == 200 and headers["x-llm-proxy-backend"] == "good"
        assert request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "down"})[0] == 503
        assert request(proxy.port, "/openai/v1/chat/completions", b"{not json")[0] == 400
        samples = scrape(proxy.port)

    def requests(prefix: str, model: str, backend: str, status: str) -> float:
        return value(
            samples, "llm_proxy_requests_total", prefix=prefix, model=model, backend=backend, status=status, client="-"
        )

    # Requests: the pattern is the model label, never the name the client sent.
    assert requests("/openai", "chat-*", "0", "200") == 3
    assert requests("/claude", "claude-x", "0", "200") == 1
    assert requests("/openai", "pooled", "good", "200") == 1
    assert requests("/openai", "down", "0", "503") == 1
    assert requests("/openai", "-", "-", "400") == 1
    assert value(samples, "llm_proxy_rejections_total", reason="bad_request") == 1
    assert value(samples, "llm_proxy_rejections_total", reason="auth") == 0

    # Tokens: two JSON answers (3 in, 1 out) and a stream (11 prompt of which 4 cached, 7 out of which 2 reasoning).
    def tokens(prefix: str, model: str, kind: str) -> float:
        return value(samples, "llm_proxy_tokens_total", prefix=prefix, model=model, backend="0", client="-", kind=kind)

    assert [tokens("/openai", "chat-*", k) for k in ("input", "output", "cache_read", "reasoning")] == [13, 9, 4, 2]
    assert tokens("/openai", "chat-*", "cache_write") == 0
    # Translation mode, streamed: the same usage read from the OpenAI stream, sent on as Claude's.
    assert [tokens("/claude", "claude-x", k) for k in ("input", "output", "cache_read")] == [7, 7, 4]

    # Time to first token: one stream per route, each inside its bucket; none for JSON answers.
    for prefix, model in (("/openai", "chat-*"), ("/claude", "claude-x")):
        labels = {"prefix": prefix, "model": model, "backend": "0"}
        assert value(samples, "llm_proxy_time_to_first_token_seconds_count", **labels) == 1
        assert value(samples, "llm_proxy_time_to_first_token_seconds_bucket", **labels, le="0.25") == 0
        assert value(samples, "llm_proxy_time_to_first_token_seconds_bucket", **labels, le="0.5") == 1
        assert FIRST_TOKEN_DELAY <= value(samples, "llm_proxy_time_to_first_token_seconds_sum", **labels) <= 0.5
    labels = {"prefix": "/openai", "model": "chat-*", "backend": "0"}
    assert value(samples, "llm_proxy_request_duration_seconds_count", **labels) == 3
    assert value(samples, "llm_proxy_active_streams", prefix="/openai") == 0
    assert value(samples, "llm_proxy_active_streams", prefix="/claude") == 0

    # Attempts: the pool's first backend failed and the request moved on; "down" failed for good.
    assert value(samples, "llm_proxy_upstream_attempts_total", backend="0", outcome="ok") == 4
    assert value(samples, "llm_proxy_upstream_attempts_total", backend="bad", outcome="fallback") == 1
    assert value(samples, "llm_proxy_upstream_attempts_total", backend="good", outcome="ok") == 1
    assert value(samples, "llm_proxy_upstream_attempts_total", backend="0", outcome="failed") == 1
    assert value(samples, "llm_proxy_upstream_duration_seconds_count", backend="0") == 5
    assert value(samples, "llm_proxy_upstream_duration_seconds_count", backend="bad") == 1
    assert value(samples, "llm_proxy_state_store_failures_total") == 0


def test_active_streams_counts_a_stream_in_progress(
    upstreams: tuple[RecordingUpstream, ServerThread, ServerThread],
) -> None:
    _, good, bad = upstreams
    with ServerThread(ProxyApp(make_config(routes(good, bad)))) as proxy:
        seen: list[float] = []

        def scrape_meanwhile() -> None:
            threading.Event().wait(FIRST_TOKEN_DELAY / 2)
            seen.append(value(scrape(proxy.port), "llm_proxy_active_streams", prefix="/claude"))

        watcher = threading.Thread(target=scrape_meanwhile)
        watcher.start()
        assert request(proxy.port, "/claude/v1/messages", CLAUDE)[0] == 200
        watcher.join()
        assert seen == [1]
        assert value(scrape(proxy.port), "llm_proxy_active_streams", prefix="/claude") == 0


def test_request_ids_are_echoed_or_minted_on_every_response(
    upstreams: tuple[RecordingUpstream, ServerThread, ServerThread],
) -> None:
    fake, good, bad = upstreams
    with ServerThread(ProxyApp(make_config(routes(good, bad)))) as proxy:
        given = {"x-request-id": "client-id-42"}
        _, headers, _ = request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "chat-a"}, given)
        assert headers["x-request-id"] == "client-id-42"
        _, headers, _ = request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "chat-a"})
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        for path, body in (("/nowhere", CHAT), ("/openai/v1/chat/completions", b"{not json")):
            status, headers, _ = request(proxy.port, path, body, given)  # errors carry it too
            assert status >= 400 and headers["x-request-id"] == "client-id-42"
        _, headers, _ = request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "down"}, given)
        assert headers["x-request-id"] == "client-id-42"
        # Not a plain token (it would go into headers and logs verbatim): a new one instead.
        _, headers, _ = request(proxy.port, "/healthz", None, {"x-request-id": "a b\tc"}, method="GET")
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


@pytest.fixture
def json_log() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """A JSON log handler on the root logger, as ``server.log_format: json`` sets up (the formatter set per test)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream, handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_access_line_field_by_field_and_no_key_in_any_line(
    upstreams: tuple[RecordingUpstream, ServerThread, ServerThread], json_log: tuple[io.StringIO, logging.Handler]
) -> None:
    fake, good, bad = upstreams
    stream, handler = json_log
    app = ProxyApp(make_config(routes(good, bad)))
    handler.setFormatter(formatter("json", app.redactor))
    with ServerThread(app) as proxy:
        request(
            proxy.port,
            "/openai/v1/chat/completions",
            {**CHAT, "model": "chat-s", "stream": True, "stream_options": {"include_usage": True}},
            {"x-request-id": "rid-stream", "authorization": f"Bearer {KEY}"},
        )
        request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "pooled"}, {"x-request-id": "rid-pool"})
        logging.getLogger("llm_proxy.test").warning("a line that names the key %s", KEY)
    text = stream.getvalue()
    assert KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    access = [line for line in lines if line["logger"] == "llm_proxy.access"]
    stream_line = next(line for line in access if line["request_id"] == "rid-stream")
    assert {k: stream_line[k] for k in ("level", "method", "prefix", "model", "backend_model", "backend")} == {
        "level": "INFO",
        "method": "POST",
        "prefix": "/openai",
        "model": "chat-*",
        "backend_model": "upstream-model",
        "backend": "0",
    }
    assert (stream_line["status"], stream_line["client"], stream_line["attempts"]) == (200, "-", 1)
    assert (stream_line["input_tokens"], stream_line["output_tokens"]) == (7, 7)
    assert (stream_line["cache_read_tokens"], stream_line["cache_write_tokens"], stream_line["reasoning_tokens"]) == (
        4,
        0,
        2,
    )
    assert FIRST_TOKEN_DELAY * 1000 <= stream_line["ttft_ms"] <= stream_line["duration_ms"]
    assert stream_line["bytes"] > 0 and stream_line["note"] is None
    assert "messages" not in json.dumps(stream_line)  # no body
    pool_line = next(line for line in access if line["request_id"] == "rid-pool")
    assert (pool_line["backend"], pool_line["backend_model"], pool_line["attempts"]) == ("good", "m", 2)
    assert pool_line["ttft_ms"] is None
    # Every line about a request carries its id: the retry warning of the pooled request included.
    retry = next(line for line in lines if line["logger"] == "llm_proxy.modes.passthrough")
    assert retry["request_id"] == "rid-pool" and retry["level"] == "WARNING"
    masked = next(line for line in lines if line["logger"] == "llm_proxy.test")
    assert masked["message"] == "a line that names the key [redacted]" and masked["request_id"] == "-"


def test_an_exchanges_json_access_fields_exactly_and_in_order(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``Exchange.log``'s fields for a JSON line, every key in order: a request that left early with a note, a first
    token and usage; then one that got no answer, with none of them (their fields null)."""
    monkeypatch.setattr(FIELDS, "structured", True)
    caplog.set_level(logging.INFO, logger="llm_proxy.access")

    async def send(message: object) -> None:
        return None

    ex = Exchange({"method": "POST", "path": "/p/v1/chat/completions", "headers": []}, send)
    ex.prefix, ex.model, ex.backend_model, ex.note, ex.sent = "/p", "front", "back", "upstream said no", 77
    ex.record.client, ex.record.ttft = "alice", 0.01234
    ex.record.usage = Usage(
        input_tokens=3, output_tokens=4, cache_read_tokens=5, cache_write_tokens=6, reasoning_tokens=1
    )
    ex.log("499", 499, 0.05678)
    bare = Exchange({"method": "GET", "path": "/", "headers": []}, send)
    bare.log("0", 0, 0.001)
    records = [r for r in caplog.records if r.name == "llm_proxy.access"]
    assert [r.getMessage() for r in records] == [
        "POST /p front -> back 499 56.8ms 77B key=alice upstream said no",
        "GET / - -> - - 1.0ms 0B",  # no answer began: no status
    ]
    first, second = [getattr(r, ACCESS_FIELDS) for r in records]
    assert list(first.items()) == [
        ("method", "POST"), ("prefix", "/p"), ("model", "front"), ("backend_model", "back"), ("backend", "-"),
        ("status", 499), ("duration_ms", 56.8), ("ttft_ms", 12.3), ("input_tokens", 3), ("output_tokens", 4),
        ("cache_read_tokens", 5), ("cache_write_tokens", 6), ("reasoning_tokens", 1), ("client", "alice"),
        ("attempts", 0), ("bytes", 77), ("note", "upstream said no"),
    ]  # fmt: skip
    assert list(second.items()) == [
        ("method", "GET"), ("prefix", "/"), ("model", "-"), ("backend_model", "-"), ("backend", "-"),
        ("status", None), ("duration_ms", 1.0), ("ttft_ms", None), ("input_tokens", None), ("output_tokens", None),
        ("cache_read_tokens", None), ("cache_write_tokens", None), ("reasoning_tokens", None), ("client", "-"),
        ("attempts", 0), ("bytes", 0), ("note", None),
    ]  # fmt: skip


def test_text_lines_carry_the_request_id_and_mask_keys(
    upstreams: tuple[RecordingUpstream, ServerThread, ServerThread], json_log: tuple[io.StringIO, logging.Handler]
) -> None:
    _, good, bad = upstreams
    stream, handler = json_log
    app = ProxyApp(make_config(routes(good, bad)))
    handler.setFormatter(formatter("text", app.redactor))
    with ServerThread(app) as proxy:
        request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "pooled"}, {"x-request-id": "rid-t"})
        logging.getLogger("llm_proxy.test").warning("key %s", KEY)
    text = stream.getvalue()
    assert KEY not in text and "key [redacted]" in text
    about = [line for line in text.splitlines() if line.endswith(" [request rid-t]")]
    assert any("llm_proxy.access: POST /openai pooled -> m 200" in line for line in about)
    assert any("backend bad of models[2] (pooled) answered 503" in line for line in about)


def test_two_workers_one_scrape_sums_both(tmp_path: Path) -> None:
    """Each worker keeps its own counts; a scrape of either must report the sum (and the files go at exit)."""
    port = free_port()
    entry = {"frontend_model_name": "m", "frontend_base_url": "/o", "backend_base_url": "mock://"}
    path = write_config(tmp_path, [entry], {"workers": 2})
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(env_tmp)}
    args = [sys.executable, "-m", "llm_proxy", "--config", str(path), "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    sent = 60
    with ends_on_sigterm(proc, 15):
        wait_healthy(port, proc)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

        def client(n: int) -> None:
            for _ in range(n):
                assert request(port, "/o/v1/chat/completions", body)[0] == 200

        threads = [threading.Thread(target=client, args=(sent // 6,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(list(env_tmp.glob("llm-proxy-metrics-*/*.db"))) >= 2  # both workers wrote their share
        labels = {"prefix": "/o", "model": "m", "backend": "0", "status": "200", "client": "-"}
        # A request is counted just after its last byte left: the client can be faster than the worker.
        deadline = time.monotonic() + 5
        while value(scrape(port), "llm_proxy_requests_total", **labels) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(4):  # whichever worker answers the scrape
            samples = scrape(port)
            assert value(samples, "llm_proxy_requests_total", **labels) == sent
            assert value(samples, "llm_proxy_upstream_attempts_total", backend="0", outcome="ok") == sent
    assert list(env_tmp.glob("llm-proxy-metrics-*")) == []


@pytest.mark.parametrize(
    ("dialect", "doc"),
    [
        (
            "claude",
            {
                "model": "claude-x",
                "stop_reason": "tool_use",
                "content": [{"type": "text", "text": "secret words"}],
                "usage": {"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": 7},
            },
        ),
        (
            "openai-responses",
            {
                "model": "claude-x",
                "status": "completed",
                "output": [{"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"}],
                "usage": {"input_tokens": 12, "output_tokens": 6, "input_tokens_details": {"cached_tokens": 7}},
            },
        ),
    ],
)
def test_a_proxy_mode_answer_is_summarized_without_its_content(dialect: str, doc: dict[str, object]) -> None:
    from llm_proxy.canonical import StopReason, Usage
    from llm_proxy.dialects import get_dialect

    summary = get_dialect(dialect).summarize(doc)
    assert summary is not None
    assert (summary.model, summary.stop_reason) == ("claude-x", StopReason.TOOL_USE)
    assert summary.usage == Usage(input_tokens=5, output_tokens=6, cache_read_tokens=7)
    stranger = get_dialect(dialect).summarize({"unrelated": True})
    assert stranger is not None and (stranger.model, stranger.usage) == ("", Usage())
