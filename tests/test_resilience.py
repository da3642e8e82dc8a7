"""Resilient routing end to end: real proxy, scripted upstreams that fail on purpose, official SDKs as clients."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
import yaml

from llm_proxy.config import parse_config
from llm_proxy.config.model import BACKEND_FIELDS
from tests.faulty_upstream import FaultyUpstream
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    running_upstream,
    sdk_anthropic,
)

CLAUDE_OK = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "up",
    "content": [{"type": "text", "text": "from claude"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 2},
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def _chat_ok(stream: bool) -> tuple[str, bytes]:
    if not stream:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from gpt"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        return "application/json", orjson.dumps(body)
    chunks = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "from gpt"}, "finish_reason": None}],
        },
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    return "text/event-stream", b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def _claude_sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n" for name, data in events)


CLAUDE_STREAM_START: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {**CLAUDE_OK, "content": [], "stop_reason": None}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial "}},
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=orjson.dumps(body), headers={"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


MESSAGE = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def claude_upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    async def ok(recorded: Recorded, reply: Reply) -> None:
        await reply.json(200, orjson.dumps(CLAUDE_OK))

    fake = RecordingUpstream(ok)
    with running_upstream(fake) as server:
        yield fake, server


def test_a_429_with_retry_after_is_retried_on_a_pool_of_one_after_the_wait() -> None:
    async def handler(recorded: Recorded, reply: Reply) -> None:
        if len(fake.requests) == 1:
            await reply.json(
                429,
                orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
                [("retry-after", "1")],
            )
        else:
            await reply.json(200, orjson.dumps(CLAUDE_OK))

    fake = RecordingUpstream(handler)
    with running_upstream(fake) as upstream:
        config = make_config(
            [{"frontend_model_name": "m", "frontend_base_url": "/a", "backend_base_url": upstream.url, "retries": 2}]
        )
        with running_proxy(config) as proxy:
            started = time.monotonic()
            status, headers, body = post(proxy.port, "/a/v1/messages", MESSAGE)
            elapsed = time.monotonic() - started
    assert status == 200 and json.loads(body)["content"][0]["text"] == "from claude"
    assert (headers["x-llm-proxy-backend"], headers["x-llm-proxy-attempts"]) == ("0", "2")
    assert len(fake.requests) == 2
    assert 1.0 <= elapsed < 5.0


def test_a_503_moves_to_the_next_backend_at_once(claude_upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    async def unavailable(recorded: Recorded, reply: Reply) -> None:
        await reply.json(503, b'{"type":"error","error":{"type":"api_error","message":"down"}}', [("retry-after", "9")])

    good, good_server = claude_upstream
    bad = RecordingUpstream(unavailable)
    with running_upstream(bad) as bad_server:
        config = make_config(
            [
                {
                    "frontend_model_name": "m",
                    "frontend_base_url": "/a",
                    "retries": 1,
                    "backends": [
                        {"name": "bad", "backend_base_url": bad_server.url, "weight": 1e9},
                        {"name": "good", "backend_base_url": good_server.url, "weight": 1e-9},
                    ],
                }
            ]
        )
        with running_proxy(config) as proxy:
            started = time.monotonic()
            status, headers, _ = post(proxy.port, "/a/v1/messages", MESSAGE)
            assert time.monotonic() - started < 1.0  # another healthy backend: no waiting for Retry-After
    assert status == 200
    assert (headers["x-llm-proxy-backend"], headers["x-llm-proxy-attempts"]) == ("good", "2")
    assert (len(bad.requests), len(good.requests)) == (1, 1)


def test_when_every_attempt_fails_the_client_gets_the_last_error_in_its_dialect() -> None:
    async def unavailable(recorded: Recorded, reply: Reply) -> None:
        await reply.json(529, orjson.dumps(OVERLOADED))

    bad = RecordingUpstream(unavailable)
    with running_upstream(bad) as upstream:
        config = make_config(
            [
                {
                    "frontend_model_name": "m",
                    "frontend_base_url": "/c",
                    "frontend_dialect": "openai-chat",
                    "backend_dialect": "claude",
                    "backend_base_url": upstream.url,
                    "retries": 1,
                }
            ]
        )
        with running_proxy(config) as proxy:
            status, _, body = post(
                proxy.port, "/c/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            )
    assert status == 503 and json.loads(body)["error"]["message"] == "Overloaded"
    assert len(bad.requests) == 2


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_claude_client_is_served_by_an_openai_fallback_when_claude_is_overloaded(stream: bool) -> None:
    async def overloaded(recorded: Recorded, reply: Reply) -> None:
        if json.loads(recorded.body).get("stream"):  # Anthropic sends overload as the stream's first event
            await reply.start(200, [("content-type", "text/event-stream")])
            await reply.chunk(_claude_sse([("error", OVERLOADED)]), more=False)
        else:
            await reply.json(529, orjson.dumps(OVERLOADED))

    async def gpt(recorded: Recorded, reply: Reply) -> None:
        content_type, body = _chat_ok(bool(json.loads(recorded.body).get("stream")))
        await reply.start(200, [("content-type", content_type)])
        await reply.chunk(body, more=False)

    primary, fallback = RecordingUpstream(overloaded), RecordingUpstream(gpt)
    with running_upstream(primary) as claude_server, running_upstream(fallback) as gpt_server:
        config = make_config(
            [
                {
                    "frontend_model_name": "claude-test-1",
                    "frontend_base_url": "/claude",
                    "frontend_dialect": "claude",
                    "backend_dialect": "claude",
                    "backend_base_url": claude_server.url,
                    "retries": 1,
                    "fallbacks": [
                        {
                            "backend_dialect": "openai-chat",
                            "backend_base_url": gpt_server.url,
                            "backend_model_name": "gpt-4o",
                            "name": "gpt",
                        }
                    ],
                }
            ]
        )
        with running_proxy(config) as proxy:
            client = sdk_anthropic(base_url=proxy.url + "/claude", api_key="k", max_retries=0)
            kwargs: dict[str, Any] = {
                "model": "claude-test-1",
                "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}],
            }
            if stream:
                with client.messages.stream(**kwargs) as events:
                    text = events.get_final_text()
            else:
                raw = client.messages.with_raw_response.create(**kwargs)
                assert (raw.headers["x-llm-proxy-backend"], raw.headers["x-llm-proxy-attempts"]) == ("gpt", "2")
                text = raw.parse().content[0].text
    assert text == "from gpt"
    assert (len(primary.requests), len(fallback.requests)) == (1, 1)
    assert json.loads(fallback.requests[0].body)["model"] == "gpt-4o"


def test_a_refused_connection_moves_on(claude_upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    good, good_server = claude_upstream
    closed = f"http://127.0.0.1:{free_port()}"
    config = make_config(
        [
            {
                "frontend_model_name": "m",
                "frontend_base_url": "/a",
                "retries": 1,
                "backends": [
                    {"name": "down", "backend_base_url": closed, "weight": 1e9},
                    {"name": "up", "backend_base_url": good_server.url, "weight": 1e-9},
                ],
            }
        ]
    )
    with running_proxy(config) as proxy:
        status, headers, _ = post(proxy.port, "/a/v1/messages", MESSAGE)
    assert status == 200 and headers["x-llm-proxy-backend"] == "up" and len(good.requests) == 1


def test_no_retry_once_a_byte_reached_the_client(claude_upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    async def cut_after_start(recorded: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        await reply.chunk(_claude_sse(CLAUDE_STREAM_START))
        raise ConnectionResetError("cut")  # the upstream server drops the connection mid-stream

    good, good_server = claude_upstream
    primary = RecordingUpstream(cut_after_start)
    with running_upstream(primary) as server:
        config = make_config(
            [
                {
                    "frontend_model_name": "m",
                    "frontend_base_url": "/c",
                    "frontend_dialect": "claude",
                    "backend_dialect": "claude",
                    "backend_base_url": server.url,
                    "retries": 2,
                    "fallbacks": [{"backend_dialect": "claude", "backend_base_url": good_server.url}],
                }
            ]
        )
        with running_proxy(config) as proxy:
            client = sdk_anthropic(base_url=proxy.url + "/c", api_key="k", max_retries=0)
            with pytest.raises(anthropic.APIStatusError), client.messages.stream(**MESSAGE) as events:
                events.get_final_text()
    assert len(primary.requests) == 1 and good.requests == []


def test_a_refused_key_moves_to_the_next_key_of_the_pool(
    claude_upstream: tuple[RecordingUpstream, ServerThread],
) -> None:
    async def check_key(recorded: Recorded, reply: Reply) -> None:
        if recorded.headers.get("x-api-key") == "sk-revoked-000001":
            await reply.json(
                401, b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
            )
        else:
            await reply.json(200, orjson.dumps(CLAUDE_OK))

    fake = RecordingUpstream(check_key)
    with running_upstream(fake) as upstream:
        keys = [("revoked", "sk-revoked-000001", 1e9), ("current", "sk-current-000002", 1e-9)]
        backends = [
            {
                "name": name,
                "backend_base_url": upstream.url,
                "backend_api_key": key,
                "weight": weight,
                "backend_auth_header": "x-api-key",
                "backend_auth_schema": "",
            }
            for name, key, weight in keys
        ]
        config = make_config(
            [{"frontend_model_name": "m", "frontend_base_url": "/a", "retries": 1, "backends": backends}]
        )
        with running_proxy(config) as proxy:
            status, headers, _ = post(proxy.port, "/a/v1/messages", MESSAGE)
    assert status == 200 and headers["x-llm-proxy-backend"] == "current"
    assert [r.headers["x-api-key"] for r in fake.requests] == ["sk-revoked-000001", "sk-current-000002"]


def test_one_pattern_route_serves_every_claude_model_name(
    claude_upstream: tuple[RecordingUpstream, ServerThread],
) -> None:
    fake, upstream = claude_upstream
    config = make_config(
        [
            {
                "frontend_model_name": "claude-*",
                "frontend_base_url": "/c",
                "backend_base_url": upstream.url,
                "backend_model_name": "{model}",
            },
            {
                "frontend_model_name": "claude-haiku-*",
                "frontend_base_url": "/c",
                "backend_base_url": upstream.url,
                "backend_model_name": "small-{model}",
            },
            {
                "frontend_model_name": "claude-opus-4",
                "frontend_base_url": "/c",
                "backend_base_url": upstream.url,
                "backend_model_name": "opus-exact",
            },
        ]
    )
    with running_proxy(config) as proxy:
        for model in ("claude-test-1", "claude-haiku-4-5", "claude-opus-4"):
            status, _, _ = post(proxy.port, "/c/v1/messages", {**MESSAGE, "model": model})
            assert status == 200
        status, _, body = post(proxy.port, "/c/v1/messages", {**MESSAGE, "model": "gpt-4o"})
        assert status == 404 and b"claude-haiku-*" in body
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/c/v1/models")
        listed = json.loads(conn.getresponse().read())
        conn.close()
    assert [json.loads(r.body)["model"] for r in fake.requests] == [
        "claude-test-1",
        "small-claude-haiku-4-5",
        "opus-exact",
    ]
    assert [m["id"] for m in listed["data"]] == ["claude-opus-4"]  # exact names only


def test_the_resilience_docs_example_loads() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "resilience.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {"ANTHROPIC_KEY_1": "sk-ant-one-000001", "ANTHROPIC_KEY_2": "sk-ant-two-000002", "OPENAI_API_KEY": "sk-o-3"}
    route = parse_config(yaml.safe_load(block), "docs/resilience.md", env).routes[0]
    assert route.pattern and route.retries == 3
    assert [(b.name, b.weight) for b in route.pool] == [("anthropic-a", 3.0), ("anthropic-b", 1.0)]
    assert [(b.name, b.backend_dialect) for b in route.fallbacks] == [("bedrock", "bedrock"), ("openai", "openai-chat")]
    served = route.for_model("claude-haiku-4-5")
    assert [b.backend_model_name for b in served.pool] == ["claude-haiku-4-5", "claude-haiku-4-5"]
    assert served.fallbacks[1].backend_model_name == "gpt-4o"


def test_an_attempts_view_of_a_route_is_made_once_per_backend_and_is_that_backends() -> None:
    """``Route.using`` keeps its view of each backend (every attempt asks for it): the same object again, with
    the backend's fields; a route made from it by ``replace`` (a pattern route's model) has views of its own."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "resilience.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {"ANTHROPIC_KEY_1": "sk-ant-one-000001", "ANTHROPIC_KEY_2": "sk-ant-two-000002", "OPENAI_API_KEY": "sk-o-3"}
    route = parse_config(yaml.safe_load(block), "docs/resilience.md", env).routes[0]
    served = route.for_model("claude-haiku-4-5")
    for source in (route, served):
        for backend in (*source.pool, *source.fallbacks):
            view = source.using(backend)
            assert source.using(backend) is view
            fields = {name: getattr(backend, name) for name in BACKEND_FIELDS}
            assert view == replace(source, backend_name=backend.name, **fields)
            assert {name: getattr(view, name) for name in BACKEND_FIELDS} == fields
    first = route.pool[0]
    assert route.using(first).backend_model_name == "{model}"  # the pattern, not the served model
    assert served.using(served.pool[0]).backend_model_name == "claude-haiku-4-5"
    # the same backend object through both routes: each route's own view (with its own pool)
    fallback = route.fallbacks[0]
    assert route.using(fallback).backends == route.backends
    assert served.using(fallback).backends == served.backends != route.backends
    # an equal backend that is another object gets a view of its own (never another backend's)
    twin = replace(first)
    assert twin == first and twin is not first
    assert route.using(twin) is not route.using(first) and route.using(twin) == route.using(first)


@pytest.mark.parametrize(("behaviour", "key"), [("silent", "first_byte"), ("silent_mid", "idle")])
def test_per_route_timeouts_override_the_server_defaults(behaviour: str, key: str) -> None:
    with FaultyUpstream(behaviour) as upstream:
        config = make_config(
            [
                {
                    "frontend_model_name": "m",
                    "frontend_base_url": "/a",
                    "backend_base_url": upstream.url,
                    "timeouts": {key: 0.3},
                }
            ],
            server={"read_timeout": 60},
        )
        with running_proxy(config) as proxy:
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
            conn.request(
                "POST",
                "/a/v1/messages",
                body=orjson.dumps({**MESSAGE, "stream": True}),
                headers={"content-type": "application/json"},
            )
            resp = conn.getresponse()
            if key == "first_byte":
                assert resp.status == 504 and json.loads(resp.read())["error"]["type"] == "timeout_error"
            else:
                assert resp.status == 200
                with pytest.raises(http.client.IncompleteRead):  # proxy mode: the connection is aborted
                    resp.read()
            conn.close()
            assert time.monotonic() - started < 5.0


def test_a_cut_before_the_first_byte_moves_on(claude_upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    good, good_server = claude_upstream
    with FaultyUpstream("cut_before") as cut:
        config = make_config(
            [
                {
                    "frontend_model_name": "m",
                    "frontend_base_url": "/c",
                    "frontend_dialect": "claude",
                    "retries": 1,
                    "backends": [
                        {"name": "cut", "backend_dialect": "claude", "backend_base_url": cut.url, "weight": 1e9},
                        {
                            "name": "ok",
                            "backend_dialect": "claude",
                            "backend_base_url": good_server.url,
                            "weight": 1e-9,
                        },
                    ],
                }
            ]
        )
        with running_proxy(config) as proxy:
            status, headers, body = post(proxy.port, "/c/v1/messages", MESSAGE)
        assert len(cut.requests) == 1
    assert status == 200 and headers["x-llm-proxy-backend"] == "ok"
    assert json.loads(body)["content"][0]["text"] == "from claude"
