"""System prompt edits and session progress through the real server, in both modes, with a real Redis."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.redis_server import RedisServer
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    running_upstream,
    sdk_anthropic,
    sdk_openai,
)

EDITS: dict[str, object] = {
    "system_replacements": {"Claude Code": "the assistant", "Anthropic": "ACME"},
    "system_append": "Answer in English.",
}

CHAT_REPLY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
}
CLAUDE_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 2},
}


@pytest.fixture
def recording() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    fake = RecordingUpstream()

    async def handler(req: Recorded, reply: Reply) -> None:
        body = CLAUDE_REPLY if req.path.endswith("/messages") else CHAT_REPLY
        await reply.json(200, json.dumps(body).encode())

    fake.handler = handler
    with running_upstream(fake) as server:
        yield fake, server


def entry(server: ServerThread, prefix: str, **extra: object) -> dict[str, object]:
    out: dict[str, object] = {
        "frontend_model_name": "m",
        "frontend_base_url": prefix,
        "backend_base_url": server.url,
    }
    out.update(extra)
    return out


def test_proxy_mode_edits_claude_system_blocks_and_keeps_the_rest(
    recording: tuple[RecordingUpstream, ServerThread],
) -> None:
    fake, server = recording
    with running_proxy(make_config([entry(server, "/c", **EDITS)])) as proxy:
        sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0).messages.create(
            model="m",
            max_tokens=10,
            system=[
                {
                    "type": "text",
                    "text": "You are Claude Code, made by Anthropic.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=[{"role": "user", "content": "Claude Code rocks"}],
            extra_body={"x_unknown": {"b": 1.0, "a": [1, 2]}},
        )
    sent = orjson.loads(fake.requests[0].body)
    assert sent["system"] == [
        {"type": "text", "text": "You are the assistant, made by ACME.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in English."},
    ]
    assert sent["messages"] == [{"role": "user", "content": "Claude Code rocks"}]
    # Everything else is the client's body, re-serialised compactly in the same order.
    assert list(sent) == ["max_tokens", "messages", "model", "system", "x_unknown"]
    assert sent["x_unknown"] == {"b": 1.0, "a": [1, 2]}
    assert fake.requests[0].body == orjson.dumps(sent)


def test_proxy_mode_edits_chat_system_message(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording
    with running_proxy(make_config([entry(server, "/o", **EDITS)])) as proxy:
        sdk_openai(base_url=f"{proxy.url}/o/v1", api_key="k", max_retries=0).chat.completions.create(
            model="m",
            messages=[{"role": "developer", "content": "Be Claude Code."}, {"role": "user", "content": "Anthropic?"}],
        )
    sent = orjson.loads(fake.requests[0].body)
    assert sent["messages"] == [
        {"role": "developer", "content": "Be the assistant.\n\nAnswer in English."},
        {"role": "user", "content": "Anthropic?"},
    ]


def test_proxy_mode_without_system_gets_one(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording
    with running_proxy(make_config([entry(server, "/o", system_append="Be brief.")])) as proxy:
        sdk_openai(base_url=f"{proxy.url}/o/v1", api_key="k", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert orjson.loads(fake.requests[0].body)["messages"][0] == {"role": "system", "content": "Be brief."}


def test_translation_mode_edits_reach_the_other_dialect(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording
    route = entry(server, "/t", frontend_dialect="openai-chat", backend_dialect="claude", **EDITS)
    with running_proxy(make_config([route])) as proxy:
        sdk_openai(base_url=f"{proxy.url}/t/v1", api_key="k", max_retries=0).chat.completions.create(
            model="m",
            messages=[{"role": "system", "content": "I am Claude Code."}, {"role": "user", "content": "Anthropic"}],
        )
    sent = orjson.loads(fake.requests[0].body)
    assert sent["system"] == "I am the assistant.\n\nAnswer in English."
    assert sent["messages"] == [{"role": "user", "content": "Anthropic"}]


def _chat(proxy: ServerThread, session: str, text: str) -> None:
    sdk_openai(base_url=f"{proxy.url}/p/v1", api_key="k", max_retries=0).chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
        extra_headers={"x-session-id": session},
    )


def _system_sent(fake: RecordingUpstream, i: int) -> str:
    content: str = orjson.loads(fake.requests[i].body)["messages"][0]["content"]
    return content


def test_progress_shared_by_two_proxies_over_redis(
    recording: tuple[RecordingUpstream, ServerThread], redis_url: str
) -> None:
    fake, server = recording
    config = make_config([entry(server, "/p", inject_progress=True)], {"state_store": redis_url})
    with running_proxy(config) as one, running_proxy(config) as two:
        _chat(one, "sess-shared", "first request text")
        _chat(two, "sess-shared", "second")
        _chat(one, "sess-shared", "third")
    assert _system_sent(fake, 0) == "sys"
    second, third = _system_sent(fake, 1), _system_sent(fake, 2)
    assert "Requests so far: 1." in second and "First request: first request text" in second
    assert "Requests so far: 2." in third and "Tokens used: 20 in, 4 out." in third


def test_redis_killed_requests_still_succeed(
    recording: tuple[RecordingUpstream, ServerThread], disposable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = recording
    config = make_config([entry(server, "/p", inject_progress=True)], {"state_store": disposable_redis.url})
    with running_proxy(config) as proxy:
        _chat(proxy, "s1", "before")
        _chat(proxy, "s1", "still up")
        assert "Requests so far: 1." in _system_sent(fake, 1)
        disposable_redis.kill()
        _chat(proxy, "s1", "after the kill")
        _chat(proxy, "s1", "and again")
        metrics = urllib.request.urlopen(f"{proxy.url}/metrics", timeout=5).read().decode()
    failures = [line for line in metrics.splitlines() if line.startswith("llm_proxy_state_store_failures_total ")]
    assert failures and float(failures[0].split()[1]) >= 2
    assert 'llm_proxy_requests_total{backend="0",client="-",model="m",prefix="/p",status="200"} 4.0' in metrics
    assert len(fake.requests) == 4
    assert _system_sent(fake, 2) == "sys" and _system_sent(fake, 3) == "sys"
    assert "session progress disabled while the state store is unavailable" in caplog.text


def _claude_stream(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_progress_counts_streamed_tool_calls_in_proxy_mode(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        start = {**CLAUDE_REPLY, "content": [], "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}
        args = '{"file_path": "/repo/src/app.py", "old_string": "a", "new_string": "b"}'
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Edit", "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": args[:20]},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": args[20:]},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
            {"type": "message_stop"},
        ]
        await reply.chunk(_claude_stream(events), more=False)

    fake.handler = handler
    with running_proxy(make_config([entry(server, "/c", inject_progress=True)])) as proxy:
        ant: Any = sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0)
        for text in ("edit the app", "again"):
            with ant.messages.stream(
                model="m",
                max_tokens=10,
                system="base",
                messages=[{"role": "user", "content": text}],
                extra_headers={"x-claude-code-session-id": "cc-1"},
            ) as stream:
                stream.get_final_message()
    system = orjson.loads(fake.requests[1].body)["system"]
    assert system.startswith("base\n\n## Session progress (added by llm-proxy)\n")
    assert "Requests so far: 1. Tokens used: 30 in, 7 out." in system
    assert "Tool calls: Edit x1" in system
    assert "Files touched: /repo/src/app.py" in system
    assert "Last stop reason: tool_use" in system
