"""Anthropic Messages transcripts (``claude``): recorded upstream streams, bodies and errors.

The files in ``tests/transcripts/claude/`` copy the wire format documented for ``POST /v1/messages``
(``shared/reference/dialects.md`` section C, after Anthropic's streaming and errors documentation): every event
has an ``event:`` line equal to its JSON ``type``; ``message_start`` (usage with cache counts), then numbered
blocks (``content_block_start`` / ``_delta`` / ``_stop``) with ``text_delta``, ``input_json_delta`` (a tool_use
starts with ``input: {}`` and an empty first fragment), ``thinking_delta`` and a ``signature_delta`` just before
the thinking block stops, ``redacted_thinking`` whole in its start event, ``ping`` events anywhere,
``message_delta`` with the stop reason and cumulative usage, ``message_stop``; an ``error`` event may follow a 200.
One stream uses CRLF line endings, which SSE allows. Error bodies are ``{"type":"error","error":{type, message}}``.

Usage: ``input_tokens`` excludes cache reads and writes (the canonical convention too).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message as SDKMessage
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    MessageStart,
    ProxyError,
    Reasoning,
    Request,
    Response,
    SignatureDelta,
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

DIR = "claude"
CLAUDE = get_dialect("claude")
REQUEST = Request(model="claude-sonnet-4-5", messages=(), stream=True, origin="claude")
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)

SIGNATURE = (
    "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds/1Cq+Rk3bnHZnBhUr7pGJlq0ZJrWUG+N9jq9JYXLhZHCn0Dr0pQI9wB3rDSFVPz"
    "HYEB0dl8jZ5c3Jx4ZGq6"
)
REDACTED = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB8URj2pLmN8Gd3ApIXKfM0"
)

STREAMS: dict[str, list[StreamEvent]] = {
    "stream_text.sse": [
        MessageStart(
            id="msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=25, output_tokens=1, cache_read_tokens=3000, cache_write_tokens=1200),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Hello"),
        TextDelta(index=0, text="! Ça va — こんにちは"),
        BlockStop(index=0),
        Finish(
            stop_reason=StopReason.END_TURN,
            # message_delta carried only output_tokens: the counts from message_start stand
            usage=Usage(input_tokens=25, output_tokens=15, cache_read_tokens=3000, cache_write_tokens=1200),
        ),
    ],
    "stream_thinking_tool_use.sse": [
        MessageStart(
            id="msg_01EcyWo6m4hyW8KHs4LqPc8M",
            model="claude-opus-4-1-20250805",
            usage=Usage(input_tokens=472, output_tokens=2),
        ),
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n"),
        ThinkingDelta(index=0, text="1071 = 2 × 462 + 147"),
        SignatureDelta(index=0, signature=SIGNATURE),
        BlockStop(index=0),
        BlockStart(index=1, kind="redacted_thinking", data=REDACTED),
        BlockStop(index=1),
        BlockStart(index=2, kind="text"),
        TextDelta(index=2, text="Let me check the weather in Paris."),
        BlockStop(index=2),
        BlockStart(index=3, kind="tool_call", id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather"),
        ToolArgsDelta(index=3, partial_json=""),
        ToolArgsDelta(index=3, partial_json='{"location": "San Fra'),
        ToolArgsDelta(index=3, partial_json='ncisco, CA", "unit": "fah'),
        ToolArgsDelta(index=3, partial_json='renheit"}'),
        BlockStop(index=3),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=472, output_tokens=89)),
    ],
    "stream_stop_sequence_crlf.sse": [
        MessageStart(
            id="msg_017pkdmoyQF4qSVnRFTQkxjL",
            model="claude-haiku-4-5-20251001",
            usage=Usage(input_tokens=14, output_tokens=1),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="1, 2, 3, 4"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.STOP_SEQUENCE, stop_sequence="5", usage=Usage(input_tokens=14, output_tokens=12)),
    ],
    "stream_error_overloaded.sse": [
        MessageStart(
            id="msg_01Vb4vS9n3Hc1Zr8C3uS2Ypq",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=8, output_tokens=1),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Once"),
        StreamError(error=ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded")),
    ],
    "stream_refusal_unknown_events.sse": [  # pings (one before message_start) and an unknown event type ignored
        MessageStart(
            id="msg_01Rf8sQmKx2LbN4cT7vWz9Ya",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=31, output_tokens=1),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="I can't help with that."),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.REFUSAL, usage=Usage(input_tokens=31, output_tokens=9)),
    ],
    "stream_tool_use_no_input.sse": [  # a tool without parameters: input {} and one empty fragment
        MessageStart(
            id="msg_01NoArgs7kQ2mV9xR4tY6uWz",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=402, output_tokens=3),
        ),
        BlockStart(index=0, kind="tool_call", id="toolu_01GZ7hDkVn1P4eVTKmHZBsYq", name="get_current_time"),
        ToolArgsDelta(index=0, partial_json=""),
        ToolArgsDelta(index=0, partial_json="{}"),  # the input object it started with, as the body decoder gives it
        BlockStop(index=0),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=402, output_tokens=38)),
    ],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_exactly_at_every_split(name: str) -> None:
    data = read_bytes(DIR, name)
    expected = STREAMS[name]
    assert decode_whole(CLAUDE.stream_decoder(REQUEST), data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(CLAUDE.stream_decoder(REQUEST), data, cut) == expected, cut


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_thinking_tool_use.sse"])
def test_recorded_stream_without_message_stop_is_a_stream_error(name: str) -> None:
    data = read_bytes(DIR, name)
    events = decode_whole(CLAUDE.stream_decoder(REQUEST), data[: data.index(b"event: message_stop")])
    assert events[:-1] == STREAMS[name][:-1]
    assert isinstance(events[-1], StreamError) and events[-1].error.kind is ErrorKind.API_ERROR


BODIES: dict[str, Response] = {
    "response_text.json": Response(
        id="msg_013Zva2CMHLNnXjNJJKqJ2EF",
        model="claude-sonnet-4-5-20250929",
        content=(Text(text="Hi! My name is Claude."),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=2095, output_tokens=503, cache_write_tokens=2051),
        extra={
            "stop_sequence": None,
            "usage": {
                "cache_creation": {"ephemeral_5m_input_tokens": 2051, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard",
            },
        },
        origin="claude",
    ),
    "response_thinking_tool_use.json": Response(
        id="msg_01Aq9w938a90dw8q",
        model="claude-opus-4-1-20250805",
        content=(
            Reasoning(
                provider="anthropic",
                text="The user wants the weather; call the tool.",
                signature="WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL",
            ),
            Reasoning(
                provider="anthropic", redacted="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
            ),
            Text(text="I'll check the current weather in Paris for you."),
            ToolCall(
                id="toolu_01A09q90qw90lq917835lq9",
                name="get_weather",
                arguments='{"location":"Paris, France","unit":"celsius","days":[1,2]}',
            ),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=412, output_tokens=171, cache_read_tokens=1536),
        extra={"stop_sequence": None},
        origin="claude",
    ),
    "response_max_tokens.json": Response(
        id="msg_01HCDu5LRGeP2o7s2xGmxyx8",
        model="claude-haiku-4-5-20251001",
        content=(Text(text="Here is a long story about"),),
        stop_reason=StopReason.MAX_TOKENS,
        usage=Usage(input_tokens=10, output_tokens=6),
        extra={"stop_sequence": None},
        origin="claude",
    ),
    "response_tool_use_no_input.json": Response(
        id="msg_01NoArgs7kQ2mV9xR4tY6uWz",
        model="claude-sonnet-4-5-20250929",
        content=(ToolCall(id="toolu_01GZ7hDkVn1P4eVTKmHZBsYq", name="get_current_time", arguments="{}"),),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=402, output_tokens=38),
        extra={"stop_sequence": None},
        origin="claude",
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_recorded_response_decodes_exactly(name: str) -> None:
    decoded = CLAUDE.decode_response(read_json(DIR, name), REQUEST)
    assert decoded == BODIES[name]
    calls = [p for p in decoded.content if isinstance(p, ToolCall)]
    for call, block in zip(calls, [b for b in read_json(DIR, name)["content"] if b["type"] == "tool_use"], strict=True):
        assert orjson.loads(call.arguments) == block["input"]  # the input object, as a JSON string


@pytest.mark.parametrize(
    ("stream", "body"),
    [
        ("stream_tool_use_no_input.sse", "response_tool_use_no_input.json"),
        ("stream_thinking_tool_use.sse", "response_thinking_tool_use.json"),
    ],
)
def test_streamed_tool_arguments_parse_to_the_input_object_as_in_a_body(stream: str, body: str) -> None:
    """The same kind of answer streamed or whole: the joined argument fragments are the JSON of the input object.

    A client of another dialect gets the arguments as one JSON string (OpenAI's ``arguments``), so fragments that
    join to nothing would reach it as ``""``, which is not JSON, where a whole body gives ``"{}"``.
    """
    events = decode_whole(CLAUDE.stream_decoder(REQUEST), read_bytes(DIR, stream))
    streamed = "".join(e.partial_json for e in events if isinstance(e, ToolArgsDelta))
    (call,) = [p for p in CLAUDE.decode_response(read_json(DIR, body), REQUEST).content if isinstance(p, ToolCall)]
    assert isinstance(orjson.loads(streamed), dict)
    assert isinstance(orjson.loads(call.arguments), dict)
    if stream == "stream_tool_use_no_input.sse":
        assert orjson.loads(streamed) == orjson.loads(call.arguments) == {}


ERRORS: dict[str, tuple[ErrorKind, str | None]] = {
    # file: (kind, retry_after); the status is the recorded one
    "error_400_invalid_request.json": (ErrorKind.INVALID_REQUEST, None),
    "error_400_prompt_too_long.json": (ErrorKind.CONTEXT_LENGTH, None),
    "error_401_authentication.json": (ErrorKind.AUTHENTICATION, None),
    "error_402_billing.json": (ErrorKind.BILLING, None),
    "error_403_permission.json": (ErrorKind.PERMISSION, None),
    "error_404_not_found.json": (ErrorKind.NOT_FOUND, None),
    "error_409_conflict.json": (ErrorKind.CONFLICT, None),
    "error_413_request_too_large.json": (ErrorKind.REQUEST_TOO_LARGE, None),
    "error_429_rate_limit.json": (ErrorKind.RATE_LIMIT, "17"),
    "error_500_api_error.json": (ErrorKind.API_ERROR, None),
    "error_504_timeout.json": (ErrorKind.TIMEOUT, None),
    "error_529_overloaded.json": (ErrorKind.OVERLOADED, None),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_error_decodes_to_its_kind(name: str) -> None:
    recorded = read_error(DIR, name)
    kind, retry_after = ERRORS[name]
    message = read_json(DIR, name)["body"]["error"]["message"]
    assert CLAUDE.decode_error(recorded.status, recorded.body, recorded.headers) == ProxyError(
        status=recorded.status, kind=kind, message=message, retry_after=retry_after
    )


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_error_body_as_a_stream_error_event_decodes_to_the_same_kind(name: str) -> None:
    """The same error object arriving after a 200, as ``event: error``."""
    body = read_json(DIR, name)["body"]
    data = b"event: error\ndata: " + orjson.dumps({"type": "error", "error": body["error"]}) + b"\n\n"
    (event,) = decode_whole(CLAUDE.stream_decoder(REQUEST), data)
    assert isinstance(event, StreamError)
    assert event.error.kind is ERRORS[name][0]
    assert event.error.status == read_json(DIR, name)["status"]
    assert event.error.message == body["error"]["message"]


# ---------------------------------------------------------------------------------------------
# Encoding: the event sequence a Claude client reads
# ---------------------------------------------------------------------------------------------

ENCODE_REQUEST = Request(model="client-model", messages=(), stream=True)
CANONICAL: list[StreamEvent] = [
    MessageStart(
        id="resp_0a1b2c3d",
        model="gpt-5",
        usage=Usage(input_tokens=20, output_tokens=1, cache_read_tokens=100, cache_write_tokens=4),
    ),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="Need the "),
    ThinkingDelta(index=0, text="weather."),
    SignatureDelta(index=0, signature="c2lnbmF0dXJl"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Checking "),
    TextDelta(index=1, text="Paris."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_01abc", name="get_weather"),
    ToolArgsDelta(index=2, partial_json='{"city":'),
    ToolArgsDelta(index=2, partial_json='"Paris"}'),
    BlockStop(index=2),
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=20, output_tokens=50, cache_read_tokens=100)),
]


def encoded(events: list[StreamEvent] = CANONICAL) -> list[dict[str, Any]]:
    """The encoder's events, each with its ``event:`` line equal to its type and valid for the Anthropic SDK."""
    docs: list[dict[str, Any]] = []
    for item in parse_sse(encode_all(CLAUDE.stream_encoder(ENCODE_REQUEST), events)):
        doc = orjson.loads(item.data)
        assert item.event == doc["type"], "the Anthropic SDK dispatches on the event: line"
        if doc["type"] != "error":
            STREAM_EVENT.validate_python(doc)
        docs.append(doc)
    return docs


def shape(doc: dict[str, Any]) -> tuple[Any, ...]:
    """An event reduced to its type, index and the type of its block or delta."""
    if doc["type"] == "content_block_start":
        return (doc["type"], doc["index"], doc["content_block"]["type"])
    if doc["type"] == "content_block_delta":
        return (doc["type"], doc["index"], doc["delta"]["type"])
    if doc["type"] == "content_block_stop":
        return (doc["type"], doc["index"])
    return (doc["type"],)


def test_encoded_stream_follows_the_documented_event_order() -> None:
    assert [shape(d) for d in encoded()] == [
        ("message_start",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),  # just before the thinking block stops
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2),
        ("message_delta",),
        ("message_stop",),
    ]


def test_encoded_events_carry_the_documented_fields() -> None:
    docs = encoded()
    message = docs[0]["message"]
    assert message["id"].startswith("msg_") and message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "client-model"
    assert message["content"] == [] and message["stop_reason"] is None and message["stop_sequence"] is None
    assert message["usage"] == {
        "input_tokens": 20,
        "output_tokens": 1,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 4,
    }
    starts = [d["content_block"] for d in docs if d["type"] == "content_block_start"]
    assert starts == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_01abc", "name": "get_weather", "input": {}},
    ]
    deltas = [d["delta"] for d in docs if d["type"] == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Need the "},
        {"type": "thinking_delta", "thinking": "weather."},
        {"type": "signature_delta", "signature": "c2lnbmF0dXJl"},
        {"type": "text_delta", "text": "Checking "},
        {"type": "text_delta", "text": "Paris."},
        {"type": "input_json_delta", "partial_json": '{"city":'},
        {"type": "input_json_delta", "partial_json": '"Paris"}'},
    ]
    message_delta = docs[-2]
    assert message_delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    # usage is cumulative; cache writes reported only at the start still count at the end
    assert message_delta["usage"] == {
        "input_tokens": 20,
        "output_tokens": 50,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 4,
    }
    assert docs[-1] == {"type": "message_stop"}


def test_encoded_stream_assembles_into_a_valid_sdk_message() -> None:
    """Assemble the message the way a client does (blocks by index, deltas appended) and validate it."""
    docs = encoded()
    message = dict(docs[0]["message"])
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for doc in docs[1:]:
        if doc["type"] == "content_block_start":
            assert doc["index"] == len(blocks), "indices increase by one from 0"
            blocks[doc["index"]] = dict(doc["content_block"])
        elif doc["type"] == "content_block_delta":
            block, delta = blocks[doc["index"]], doc["delta"]
            if delta["type"] == "input_json_delta":
                partial[doc["index"]] = partial.get(doc["index"], "") + delta["partial_json"]
            else:
                field = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}
                key = field[delta["type"]]
                block[key] = block[key] + delta[key]
        elif doc["type"] == "content_block_stop" and doc["index"] in partial:
            blocks[doc["index"]]["input"] = orjson.loads(partial[doc["index"]])
        elif doc["type"] == "message_delta":
            message.update(doc["delta"])
            message["usage"] = doc["usage"]
    message["content"] = [blocks[i] for i in sorted(blocks)]
    sdk = SDKMessage.model_validate(message)
    assert sdk.stop_reason == "tool_use"
    assert [b.type for b in sdk.content] == ["thinking", "text", "tool_use"]
    assert message["content"][0] == {"type": "thinking", "thinking": "Need the weather.", "signature": "c2lnbmF0dXJl"}
    assert message["content"][2]["input"] == {"city": "Paris"}


@pytest.mark.parametrize(
    ("stop", "wire"),
    [
        (StopReason.END_TURN, "end_turn"),
        (StopReason.MAX_TOKENS, "max_tokens"),
        (StopReason.STOP_SEQUENCE, "stop_sequence"),
        (StopReason.TOOL_USE, "tool_use"),
        (StopReason.PAUSE_TURN, "pause_turn"),
        (StopReason.REFUSAL, "refusal"),
        (StopReason.CONTENT_FILTER, "refusal"),
    ],
)
def test_encoded_message_delta_has_the_documented_stop_reason(stop: StopReason, wire: str) -> None:
    sequence = "END" if stop is StopReason.STOP_SEQUENCE else None
    docs = encoded([MessageStart(id="m", model="x"), Finish(stop_reason=stop, stop_sequence=sequence)])
    assert [d["type"] for d in docs] == ["message_start", "message_delta", "message_stop"]
    assert docs[1]["delta"] == {"stop_reason": wire, "stop_sequence": sequence}


def test_encoded_stream_error_is_an_error_event_and_the_end() -> None:
    error = ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded")
    docs = encoded([*CANONICAL[:8], StreamError(error=error), *CANONICAL[8:]])
    assert docs[-1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert "message_stop" not in [d["type"] for d in docs]
