"""Translation mode end to end: official SDKs -> real proxy -> upstreams speaking the other dialect.

The Anthropic SDK does not validate event order and accepts a truncated stream silently, so every
streamed case here also checks the raw event sequence.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    sdk_anthropic,
    sdk_openai,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image-bytes").decode()


def translated(front: str, back: str, base: str = "mock://", **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "frontend_model_name": "client-model",
        "frontend_base_url": "/t",
        "frontend_dialect": front,
        "backend_model_name": "upstream-model",
        "backend_base_url": base,
        "backend_dialect": back,
    }
    entry.update(extra)
    return entry


@pytest.fixture
def claude_to_chat() -> Iterator[ServerThread]:
    with running_proxy(make_config([translated("claude", "openai-chat")])) as proxy:
        yield proxy


@pytest.fixture
def chat_to_claude() -> Iterator[ServerThread]:
    with running_proxy(make_config([translated("openai-chat", "claude")])) as proxy:
        yield proxy


def anthropic_client(proxy: ServerThread) -> Any:  # the SDKs' strict TypedDict params are not what is tested
    return sdk_anthropic(base_url=f"{proxy.url}/t", api_key="k", max_retries=0)


def openai_client(proxy: ServerThread) -> Any:
    return sdk_openai(base_url=f"{proxy.url}/t/v1", api_key="k", max_retries=0)


TOOLS = [
    {
        "name": "Bash",
        "description": "run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
    {
        "name": "Read",
        "description": "read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
]
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
    }
    for t in TOOLS
]


def check_anthropic_sequence(events: list[Any]) -> None:
    """message_start, then well-nested blocks with indexes 0,1,2..., one message_delta, message_stop."""
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert types.count("message_delta") == 1
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        if event.type == "content_block_start":
            assert open_index is None and event.index == next_index
            open_index = event.index
        elif event.type == "content_block_delta":
            assert event.index == open_index
        elif event.type == "content_block_stop":
            assert event.index == open_index
            open_index, next_index = None, next_index + 1
        else:
            raise AssertionError(f"unexpected event {event.type}")
    assert open_index is None


# --------------------------------------------------------------------------------------------------
# Anthropic SDK -> proxy (claude -> openai-chat) -> mock chat upstream
# --------------------------------------------------------------------------------------------------


def test_anthropic_text_non_streaming(claude_to_chat: ServerThread) -> None:
    message = anthropic_client(claude_to_chat).messages.create(
        model="client-model", max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello there"}]
    )
    assert message.model == "client-model"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "mock reply: hello there"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_anthropic_raw_stream_parallel_tools(claude_to_chat: ServerThread) -> None:
    text = 'run [[mock:tool Bash {"command":"ls -la"}]] and [[mock:tool Read {"path":"/etc/hosts"}]]'
    stream = anthropic_client(claude_to_chat).messages.create(
        model="client-model",
        max_tokens=100,
        tools=TOOLS,
        messages=[{"role": "user", "content": text}],
        stream=True,
    )
    events = list(stream)
    check_anthropic_sequence(events)
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [b.type for b in starts] == ["text", "tool_use", "tool_use"]
    assert [b.name for b in starts[1:]] == ["Bash", "Read"]
    fragments: dict[int, str] = {}
    for e in events:
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta":
            fragments[e.index] = fragments.get(e.index, "") + e.delta.partial_json
    assert [json.loads(v) for v in fragments.values()] == [{"command": "ls -la"}, {"path": "/etc/hosts"}]
    assert events[-2].delta.stop_reason == "tool_use"
    assert events[-2].usage.output_tokens > 0


def test_anthropic_stream_helper_accumulates(claude_to_chat: ServerThread) -> None:
    client = anthropic_client(claude_to_chat)
    with client.messages.stream(
        model="client-model", max_tokens=50, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "mock reply: stream me"
    assert final.stop_reason == "end_turn"
    assert final.model == "client-model"


def test_anthropic_upstream_error_keeps_status(claude_to_chat: ServerThread) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client(claude_to_chat).messages.create(
            model="client-model", max_tokens=5, messages=[{"role": "user", "content": "[[mock:error 429]]"}]
        )
    assert info.value.status_code == 429
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "mock error 429"}}


@pytest.mark.parametrize("directive", ["[[mock:cut]]", "[[mock:fail]]"])
def test_anthropic_broken_stream_ends_with_error_event(claude_to_chat: ServerThread, directive: str) -> None:
    stream = anthropic_client(claude_to_chat).messages.create(
        model="client-model", max_tokens=50, messages=[{"role": "user", "content": f"x {directive}"}], stream=True
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        for _ in stream:
            pass
    body: Any = info.value.body
    assert body["type"] == "error"


# --------------------------------------------------------------------------------------------------
# OpenAI SDK -> proxy (openai-chat -> claude) -> mock Claude upstream
# --------------------------------------------------------------------------------------------------


def test_openai_text_non_streaming(chat_to_claude: ServerThread) -> None:
    completion = openai_client(chat_to_claude).chat.completions.create(
        model="client-model", messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    )
    assert completion.model == "client-model"
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "mock reply: hi"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_openai_raw_stream_parallel_tools_and_usage(chat_to_claude: ServerThread) -> None:
    text = 'go [[mock:tool Bash {"command":"pwd"}]] [[mock:tool Read {"path":"a.txt"}]]'
    chunks = list(
        openai_client(chat_to_claude).chat.completions.create(
            model="client-model",
            messages=[{"role": "user", "content": text}],
            tools=CHAT_TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == chunks[0].id and c.model == "client-model" for c in chunks)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                if call.id:
                    entry["id"], entry["name"] = call.id, call.function.name or ""
                entry["args"] += call.function.arguments or ""
    assert [c["name"] for c in calls.values()] == ["Bash", "Read"]
    assert [json.loads(c["args"]) for c in calls.values()] == [{"command": "pwd"}, {"path": "a.txt"}]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_stream_helper(chat_to_claude: ServerThread) -> None:
    with openai_client(chat_to_claude).chat.completions.stream(
        model="client-model", messages=[{"role": "user", "content": "helper"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "mock reply: helper"


def test_openai_thinking_reaches_client_as_reasoning_content(chat_to_claude: ServerThread) -> None:
    completion = openai_client(chat_to_claude).chat.completions.create(
        model="client-model", messages=[{"role": "user", "content": "think [[mock:think]]"}], reasoning_effort="low"
    )
    message = completion.choices[0].message.model_dump()
    assert message["reasoning_content"] == "Thinking about the request."
    assert message["thinking_blocks"] == [
        {
            "type": "thinking",
            "thinking": "Thinking about the request.",
            "signature": message["thinking_blocks"][0]["signature"],
        }
    ]
    assert message["thinking_blocks"][0]["signature"].startswith("mock-signature-")


def test_openai_upstream_overloaded_becomes_retryable_503(chat_to_claude: ServerThread) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        openai_client(chat_to_claude).chat.completions.create(
            model="client-model", messages=[{"role": "user", "content": "[[mock:error 529]]"}]
        )
    assert info.value.status_code == 503


@pytest.mark.parametrize("directive", ["[[mock:cut]]", "[[mock:fail]]"])
def test_openai_broken_stream_raises(chat_to_claude: ServerThread, directive: str) -> None:
    stream = openai_client(chat_to_claude).chat.completions.create(
        model="client-model", messages=[{"role": "user", "content": directive}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_n_greater_than_one_is_a_clear_400(chat_to_claude: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(chat_to_claude).chat.completions.create(
            model="client-model", messages=[{"role": "user", "content": "x"}], n=2
        )
    body: Any = info.value.body
    assert body["param"] == "n"


def test_malformed_request_is_400_in_client_dialect(claude_to_chat: ServerThread) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client(claude_to_chat).messages.create(
            model="client-model",
            max_tokens=5,
            messages=[{"role": "user", "content": 42}],
        )
    body: Any = info.value.body
    assert body["error"]["type"] == "invalid_request_error"


# --------------------------------------------------------------------------------------------------
# What the upstream receives: images, tool results, thinking carry (recording upstream)
# --------------------------------------------------------------------------------------------------


CLAUDE_REPLY = {
    "id": "msg_up",
    "type": "message",
    "role": "assistant",
    "model": "upstream-model",
    "content": [
        {"type": "thinking", "thinking": "let me look", "signature": "sig-abc"},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 1},
}


def test_chat_client_thinking_signature_round_trip(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, json.dumps(CLAUDE_REPLY).encode())

    fake.handler = handler
    config = make_config([translated("openai-chat", "claude", server.url)])
    with running_proxy(config) as proxy:
        client = openai_client(proxy)
        first = client.chat.completions.create(
            model="client-model",
            messages=[{"role": "user", "content": "list"}],
            tools=CHAT_TOOLS,
            reasoning_effort="low",
        )
        assert first.usage is not None
        assert first.usage.prompt_tokens == 15 and first.usage.prompt_tokens_details is not None
        assert first.usage.prompt_tokens_details.cached_tokens == 4
        assistant = first.choices[0].message.model_dump(exclude_none=True)
        call = assistant["tool_calls"][0]
        client.chat.completions.create(
            model="client-model",
            tools=CHAT_TOOLS,
            reasoning_effort="low",
            messages=[
                {"role": "user", "content": "list"},
                assistant,  # echoed back as the client got it, thinking_blocks included
                {"role": "tool", "tool_call_id": call["id"], "content": "a.txt"},
            ],
        )
    second = json.loads(fake.requests[1].body)
    assert fake.requests[1].path == "/v1/messages"
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "let me look", "signature": "sig-abc"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        ],
    }
    assert second["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}],
    }
    assert second["thinking"]["type"] == "enabled"


def test_images_translate_both_ways(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        if req.path.endswith("/v1/messages"):
            await reply.json(200, json.dumps({**CLAUDE_REPLY, "content": [{"type": "text", "text": "ok"}]}).encode())
        else:
            body = {
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            }
            await reply.json(200, json.dumps(body).encode())

    fake.handler = handler
    models = [
        translated("openai-chat", "claude", server.url),
        translated("claude", "openai-chat", server.url + "/v1", frontend_base_url="/c"),
    ]
    with running_proxy(make_config(models)) as proxy:
        openai_client(proxy).chat.completions.create(
            model="client-model",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                }
            ],
        )
        sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0).messages.create(
            model="client-model",
            max_tokens=10,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/dog.png"}},
                    ],
                }
            ],
        )
    to_claude = json.loads(fake.requests[0].body)["messages"][0]["content"]
    assert to_claude[1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert fake.requests[1].path == "/v1/chat/completions"
    to_chat = json.loads(fake.requests[1].body)["messages"][0]["content"]
    assert to_chat == [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
    ]


def test_route_key_and_vendor_headers(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, json.dumps({**CLAUDE_REPLY, "content": [{"type": "text", "text": "ok"}]}).encode())

    fake.handler = handler
    entry = translated("openai-chat", "claude", server.url, backend_api_key="ant-key")
    entry |= {"backend_auth_header": "x-api-key", "backend_auth_schema": ""}
    with running_proxy(make_config([entry])) as proxy:
        openai_client(proxy).chat.completions.create(model="client-model", messages=[{"role": "user", "content": "x"}])
    headers = fake.requests[0].headers
    assert headers["x-api-key"] == "ant-key"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert json.loads(fake.requests[0].body)["model"] == "upstream-model"


def test_stream_is_translated_incrementally(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording
    release = fake.event("release")
    waited: list[bool] = []

    def sse(event: str, data: dict[str, Any]) -> bytes:
        return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        start = {**CLAUDE_REPLY, "content": [], "stop_reason": None}
        await reply.chunk(sse("message_start", {"type": "message_start", "message": start}))
        await reply.chunk(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        await reply.chunk(
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "one"}},
            )
        )
        waited.append(await asyncio.to_thread(release.wait, 5))
        await reply.chunk(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await reply.chunk(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 2},
                },
            )
        )
        await reply.chunk(sse("message_stop", {"type": "message_stop"}), more=False)

    fake.handler = handler
    with running_proxy(make_config([translated("openai-chat", "claude", server.url)])) as proxy:
        texts = []
        for chunk in openai_client(proxy).chat.completions.create(
            model="client-model", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                texts.append(chunk.choices[0].delta.content)
                release.set()
    assert waited == [True]
    assert texts == ["one"]


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_restored_for_clients_that_drop_it(
    recording: tuple[RecordingUpstream, ServerThread], stream: bool
) -> None:
    fake, server = recording

    def sse(data: dict[str, Any]) -> bytes:
        return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()

    async def handler(req: Recorded, reply: Reply) -> None:
        if not json.loads(req.body).get("stream"):
            await reply.json(200, json.dumps(CLAUDE_REPLY).encode())
            return
        await reply.start(200, [("content-type", "text/event-stream")])
        start = {**CLAUDE_REPLY, "content": [], "stop_reason": None}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "let me look"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-abc"}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"command": "ls"}'},
            },
            {"type": "content_block_stop", "index": 1},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
            {"type": "message_stop"},
        ]
        await reply.chunk(b"".join(sse(e) for e in events), more=False)

    fake.handler = handler
    with running_proxy(make_config([translated("openai-chat", "claude", server.url)])) as proxy:
        client = openai_client(proxy)
        first = client.chat.completions.create(
            model="client-model",
            messages=[{"role": "user", "content": "list"}],
            tools=CHAT_TOOLS,
            reasoning_effort="low",
            stream=stream,
        )
        call_id = "toolu_1"
        if stream:
            list(first)
        # A client that rebuilds the assistant turn from content and tool_calls only:
        client.chat.completions.create(
            model="client-model",
            tools=CHAT_TOOLS,
            reasoning_effort="low",
            messages=[
                {"role": "user", "content": "list"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call_id, "content": "a.txt"},
            ],
        )
    second = json.loads(fake.requests[1].body)
    assert second["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "let me look",
        "signature": "sig-abc",
    }
    assert second["messages"][1]["content"][1]["type"] == "tool_use"


def test_count_tokens_estimated_for_non_claude_backend(claude_to_chat: ServerThread) -> None:
    ant = anthropic_client(claude_to_chat)
    result = ant.messages.with_raw_response.count_tokens(
        model="client-model", system="You are terse.", messages=[{"role": "user", "content": "hello world"}]
    )
    assert result.headers["x-llm-proxy-token-count"] == "estimate"
    # cl100k_base: "You are terse." = 4 tokens, "hello world" = 2, plus 4 per message.
    assert result.parse().input_tokens == 4 + 2 + 4
    with_tools = ant.messages.count_tokens(
        model="client-model",
        messages=[{"role": "user", "content": "hello world"}],
        tools=TOOLS,
    )
    assert with_tools.input_tokens > 6 + 20


def test_count_tokens_forwarded_to_claude_backend(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, b'{"input_tokens": 42}')

    fake.handler = handler
    with running_proxy(make_config([translated("claude", "claude", server.url)])) as proxy:
        count = anthropic_client(proxy).messages.count_tokens(
            model="client-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert count.input_tokens == 42
    assert fake.requests[0].path == "/v1/messages/count_tokens"
    assert json.loads(fake.requests[0].body) == {
        "model": "upstream-model",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_unknown_operation_under_a_translation_prefix_is_404(claude_to_chat: ServerThread) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", claude_to_chat.port, timeout=5)
    conn.request("HEAD", "/t")
    assert conn.getresponse().status == 404
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", claude_to_chat.port, timeout=5)
    conn.request("POST", "/t/v1/embeddings", body=b'{"model":"client-model"}')
    resp = conn.getresponse()
    assert resp.status == 404
    assert json.loads(resp.read())["error"]["message"] == "POST /t/v1/embeddings is not an operation served under /t"
    conn.close()
