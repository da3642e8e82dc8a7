"""OpenAI Chat Completions transcripts (``openai-chat``): recorded upstream streams, bodies and errors.

The files in ``tests/transcripts/openai_chat/`` copy the wire format documented for ``POST /v1/chat/completions``
(``shared/reference/dialects.md`` section A, after OpenAI's API reference and OpenAPI spec): ``data:`` chunks
without ``event:`` lines ending with ``data: [DONE]``, a role chunk first, tool calls whose first fragment carries
``index``/``id``/``type``/``function.name`` with ``arguments: ""`` and later fragments only ``index`` and an
``arguments`` piece, one ``choices: []`` usage chunk before ``[DONE]`` when ``include_usage`` is set, and the
fields real responses carry that the codec must ignore (``obfuscation``, ``service_tier``, ``logprobs``,
``annotations``, the audio and prediction token details).

Usage follows OpenAI's convention: ``prompt_tokens`` includes ``cached_tokens`` and ``completion_tokens`` includes
``reasoning_tokens``; the canonical ``input_tokens`` excludes the cache (``prompt_tokens - cached_tokens``).
"""

from __future__ import annotations

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    MessageStart,
    ProxyError,
    Refusal,
    Request,
    Response,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCall,
    Usage,
)
from llm_proxy.dialects import get_dialect
from tests.transcripts.common import (
    decode_split,
    decode_whole,
    encode_all,
    parse_sse,
    read_bytes,
    read_error,
    read_json,
)

DIR = "openai_chat"
CHAT = get_dialect("openai-chat")
REQUEST = Request(model="gpt-4.1", messages=(), stream=True, include_usage=True, origin="openai-chat")

STREAMS: dict[str, list[StreamEvent]] = {
    "stream_text_usage.sse": [
        MessageStart(id="chatcmpl-BJ7uxHqZ2f5ZGd5mLJ3Jw3Z0DlCvd", model="o4-mini-2025-04-16", created=1743865315),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Bonjour"),
        TextDelta(index=0, text=" à"),
        TextDelta(index=0, text=" tous — 日本"),
        TextDelta(index=0, text="!"),
        BlockStop(index=0),
        Finish(
            stop_reason=StopReason.END_TURN,
            # prompt_tokens 1843 includes cached_tokens 1664; reasoning_tokens 192 is part of completion_tokens 212
            usage=Usage(input_tokens=179, output_tokens=212, cache_read_tokens=1664, reasoning_tokens=192),
        ),
    ],
    "stream_tool_calls.sse": [
        MessageStart(id="chatcmpl-BJ8a1TnFdsSNDmOOQHR4EOMtYxKhZ", model="gpt-4.1-2025-04-14", created=1743867841),
        BlockStart(index=0, kind="tool_call", id="call_DdmO9pD3xa9XTPNJ32zg2hcA", name="get_weather"),
        ToolArgsDelta(index=0, partial_json='{"lo'),
        ToolArgsDelta(index=0, partial_json='cation": "Par'),
        ToolArgsDelta(index=0, partial_json='is, France"}'),
        BlockStop(index=0),
        BlockStart(index=1, kind="tool_call", id="call_ABn3FyV0VqP3mPR0cfWfzy1x", name="get_time"),
        ToolArgsDelta(index=1, partial_json='{"tz": "Europe/Paris"}'),
        BlockStop(index=1),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage()),  # no include_usage: no usage chunk
    ],
    "stream_refusal_length.sse": [
        MessageStart(id="chatcmpl-BJ9cRyYc8PUxk3rH5Dw2Yt7oUqVbS", model="gpt-4o-2024-08-06", created=1743871010),
        BlockStart(index=0, kind="refusal"),
        TextDelta(index=0, text="I'm sorry,"),
        TextDelta(index=0, text=" I can't help"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.MAX_TOKENS, usage=Usage()),
    ],
    "stream_error.sse": [
        MessageStart(id="chatcmpl-BJAd0kLgN3x1nR2ZyUqf0fGvQ8hTw", model="gpt-4.1-mini-2025-04-14", created=1743874102),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Partial"),
        StreamError(
            error=ProxyError(
                status=500,
                kind=ErrorKind.API_ERROR,
                message="The server had an error while processing your request. Sorry about that!",
            )
        ),
    ],
    "stream_error_rate_limit.sse": [
        StreamError(
            error=ProxyError(
                status=429,
                kind=ErrorKind.RATE_LIMIT,
                message=(
                    "Rate limit reached for gpt-4.1 in organization org-QWErty1234 on tokens per min (TPM): "
                    "Limit 30000, Used 29871, Requested 1250. Please try again in 2.242s. "
                    "Visit https://platform.openai.com/account/rate-limits to learn more."
                ),
                code="rate_limit_exceeded",
            )
        )
    ],
    "stream_reasoning_content.sse": [  # a server that streams its reasoning as reasoning_content
        MessageStart(id="chatcmpl-0f3c6a8e-6a1d-4b7e-9a55-2f1d0c3b4e5a", model="deepseek-reasoner", created=1757100000),
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="9.11 vs 9.9:"),
        ThinkingDelta(index=0, text=" compare tenths."),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="9.9"),
        TextDelta(index=1, text=" is larger."),
        BlockStop(index=1),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=17, output_tokens=120, reasoning_tokens=98)),
    ],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_exactly_at_every_split(name: str) -> None:
    data = read_bytes(DIR, name)
    expected = STREAMS[name]
    assert decode_whole(CHAT.stream_decoder(REQUEST), data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(CHAT.stream_decoder(REQUEST), data, cut) == expected, cut


@pytest.mark.parametrize("name", ["stream_text_usage.sse", "stream_tool_calls.sse"])
def test_recorded_stream_cut_before_its_finish_reason_is_a_stream_error(name: str) -> None:
    """Cut inside the chunk with the finish reason: the answer is incomplete, so the stream failed."""
    data = read_bytes(DIR, name)
    finish_at = data.index(b'"finish_reason":"')
    events = decode_whole(CHAT.stream_decoder(REQUEST), data[:finish_at])
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.kind is ErrorKind.API_ERROR
    assert not any(isinstance(e, Finish) for e in events)


RESPONSES: dict[str, Response] = {
    "response_text.json": Response(
        id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        model="gpt-4o-2024-08-06",
        content=(Text(text="The image shows a wooden boardwalk path running through a lush green field or meadow."),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=93, output_tokens=46, cache_read_tokens=1024),
        created=1741570283,
        extra={"system_fingerprint": "fp_fc9f1d7035", "service_tier": "default"},
        origin="openai-chat",
    ),
    "response_tool_calls.json": Response(
        id="chatcmpl-abc123",
        model="o3-2025-04-16",
        content=(
            ToolCall(id="call_abc123", name="get_current_weather", arguments='{\n"location": "Boston, MA"\n}'),
            ToolCall(id="call_def456", name="get_current_time", arguments='{"timezone": "America/New_York"}'),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=82, output_tokens=217, reasoning_tokens=192),
        created=1699896916,
        extra={"service_tier": "default"},
        origin="openai-chat",
    ),
    "response_refusal.json": Response(
        id="chatcmpl-9nYAG9LPNonX8DAyrkwYfemr3C8HC",
        model="gpt-4o-2024-08-06",
        content=(Refusal(text="I'm sorry, I cannot assist with that request."),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=81, output_tokens=11),
        created=1721596428,
        extra={"system_fingerprint": "fp_3407719c7f"},
        origin="openai-chat",
    ),
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_recorded_response_decodes_exactly(name: str) -> None:
    assert CHAT.decode_response(read_json(DIR, name), REQUEST) == RESPONSES[name]


ERRORS: dict[str, tuple[int, ErrorKind, str | None, str | None, str | None]] = {
    # file: (status, kind, code, param, retry_after)
    "error_400_context_length.json": (400, ErrorKind.CONTEXT_LENGTH, "context_length_exceeded", "messages", None),
    "error_400_invalid_request.json": (400, ErrorKind.INVALID_REQUEST, "unsupported_parameter", "max_tokens", None),
    "error_401_invalid_api_key.json": (401, ErrorKind.AUTHENTICATION, "invalid_api_key", None, None),
    "error_403_unsupported_region.json": (
        403,
        ErrorKind.PERMISSION,
        "unsupported_country_region_territory",
        None,
        None,
    ),
    "error_404_model_not_found.json": (404, ErrorKind.NOT_FOUND, "model_not_found", None, None),
    "error_429_insufficient_quota.json": (429, ErrorKind.BILLING, "insufficient_quota", None, None),
    "error_429_rate_limit.json": (429, ErrorKind.RATE_LIMIT, "rate_limit_exceeded", None, "2"),
    "error_500_server_error.json": (500, ErrorKind.API_ERROR, None, None, None),
    "error_503_overloaded.json": (503, ErrorKind.OVERLOADED, None, None, None),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_error_decodes_to_its_kind(name: str) -> None:
    recorded = read_error(DIR, name)
    status, kind, code, param, retry_after = ERRORS[name]
    message = read_json(DIR, name)["body"]["error"]["message"]
    assert CHAT.decode_error(recorded.status, recorded.body, recorded.headers) == ProxyError(
        status=status, kind=kind, message=message, param=param, code=code, retry_after=retry_after
    )


# ---------------------------------------------------------------------------------------------
# Encoding: the chunk sequence a Chat client reads
# ---------------------------------------------------------------------------------------------

ENCODE_REQUEST = Request(model="client-model", messages=(), stream=True, include_usage=True)
CANONICAL: list[StreamEvent] = [
    MessageStart(id="msg_01XFDUDYJgAACzvnptvVoYEL", model="claude-sonnet-4-5", created=1743865315),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="The user wants weather."),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Let me check "),
    TextDelta(index=1, text="both cities."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_01A", name="get_weather"),
    ToolArgsDelta(index=2, partial_json='{"city": '),
    ToolArgsDelta(index=2, partial_json='"Paris"}'),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="toolu_01B", name="get_weather"),
    ToolArgsDelta(index=3, partial_json='{"city": "Rome"}'),
    BlockStop(index=3),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=20, output_tokens=50, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=7),
    ),
]


def encoded_chunks(request: Request = ENCODE_REQUEST, events: list[StreamEvent] = CANONICAL) -> list[str]:
    wire = parse_sse(encode_all(CHAT.stream_encoder(request), events))
    assert all(w.event is None for w in wire), "Chat streams have no event: lines"
    return [w.data for w in wire]


def test_encoded_stream_follows_the_documented_chunk_sequence() -> None:
    datas = encoded_chunks()
    assert datas[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in datas[:-1]]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"client-model"}
    assert {c.created for c in chunks} == {1743865315}
    *body, finish, usage = chunks
    # with include_usage, every chunk but the last carries "usage": null (present, not absent)
    assert all(orjson.loads(d)["usage"] is None for d in datas[:-2])
    assert body[0].choices[0].delta.role == "assistant"
    assert all(len(c.choices) == 1 and c.choices[0].finish_reason is None and c.usage is None for c in body)
    assert finish.choices[0].finish_reason == "tool_calls" and finish.usage is None
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 125,  # input + cache reads + cache writes
        "completion_tokens": 50,
        "total_tokens": 175,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    texts = [c.choices[0].delta.content for c in body if c.choices[0].delta.content]
    assert texts == ["Let me check ", "both cities."]


def test_encoded_tool_call_fragments_have_the_documented_shape() -> None:
    datas = encoded_chunks()
    calls = [
        call.model_dump(exclude_none=True)
        for d in datas[:-1]
        for choice in ChatCompletionChunk.model_validate_json(d).choices
        for call in choice.delta.tool_calls or ()
    ]
    assert calls == [
        {"index": 0, "id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
        {"index": 1, "id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 1, "function": {"arguments": '{"city": "Rome"}'}},
    ]


def test_encoded_stream_accumulates_in_the_openai_sdk() -> None:
    state = ChatCompletionStreamState()
    for data in encoded_chunks()[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate_json(data))
    completion = state.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check both cities."
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or ()] == [
        ("toolu_01A", "get_weather", '{"city": "Paris"}'),
        ("toolu_01B", "get_weather", '{"city": "Rome"}'),
    ]
    assert completion.usage is not None and completion.usage.prompt_tokens == 125


def test_encoded_stream_without_include_usage_has_no_usage_chunk() -> None:
    request = Request(model="client-model", messages=(), stream=True)
    datas = encoded_chunks(request)
    assert datas[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in datas[:-1]]
    assert all(len(c.choices) == 1 and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert '"usage"' not in "".join(datas)


@pytest.mark.parametrize(
    ("stop", "finish_reason"),
    [
        (StopReason.END_TURN, "stop"),
        (StopReason.STOP_SEQUENCE, "stop"),
        (StopReason.MAX_TOKENS, "length"),
        (StopReason.TOOL_USE, "tool_calls"),
        (StopReason.REFUSAL, "content_filter"),
    ],
)
def test_encoded_finish_reason_is_the_documented_one(stop: StopReason, finish_reason: str) -> None:
    events: list[StreamEvent] = [MessageStart(id="m", model="x"), Finish(stop_reason=stop)]
    datas = encoded_chunks(Request(model="client-model", messages=()), events)
    assert datas[-1] == "[DONE]"
    assert ChatCompletionChunk.model_validate_json(datas[-2]).choices[0].finish_reason == finish_reason


def test_encoded_stream_error_is_a_data_object_with_an_error_key_and_no_done() -> None:
    error = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="Slow down")
    events: list[StreamEvent] = [*CANONICAL[:6], StreamError(error=error), *CANONICAL[6:]]
    datas = encoded_chunks(events=events)
    assert "[DONE]" not in datas
    last = read_error_chunk(datas[-1])
    assert last == {"message": "Slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}
    # and the decoder reads it back as the same kind
    assert decode_whole(CHAT.stream_decoder(REQUEST), f"data: {datas[-1]}\n\n".encode())[-1] == StreamError(
        error=ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="Slow down", code="rate_limit_exceeded")
    )


def read_error_chunk(data: str) -> object:
    doc = orjson.loads(data)
    assert isinstance(doc, dict) and set(doc) == {"error"}
    return doc["error"]
