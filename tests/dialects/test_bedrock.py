"""The ``bedrock`` codec: the envelope around the Messages body, event-stream framing, exception frames, errors.

The Messages body itself is the claude codec's (tested in ``test_claude.py``); these tests cover what Bedrock adds:
the path model, ``anthropic_version``/``anthropic_beta``, chunk frames with base64 events, invocation metrics,
exception frames and ``x-amzn-ErrorType`` errors. Stream decoders are fed our encoder's bytes split at every offset.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import random
from typing import Any

import orjson
import pytest

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    Message,
    MessageStart,
    ProxyError,
    Request,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ToolArgsDelta,
    ToolCall,
    Usage,
)
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.dialects.bedrock import DIALECT, METRICS_KEY, BedrockStreamDecoder, BedrockStreamEncoder
from llm_proxy.dialects.claude import DIALECT as CLAUDE
from llm_proxy.dialects.openai_chat import DIALECT as CHAT
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.framing.eventstream import EventStreamDecoder, chunk_frame, exception_frame
from tests.fixtures import load_request, request_names

OPTIONS = EncodeOptions()
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CUT = StreamError(
    error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream closed the stream before it finished")
)

BODY: dict[str, Any] = {
    "anthropic_version": "bedrock-2023-05-31",
    "anthropic_beta": ["interleaved-thinking-2025-05-14"],
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny", "is_error": False}],
        },
    ],
    "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "temperature": 1.0,
    "stop_sequences": ["END"],
}


def encode(request: Request) -> dict[str, Any]:
    body = DIALECT.encode_request(request, OPTIONS)
    assert isinstance(body, dict)
    return body


# --- requests -------------------------------------------------------------------------------------------------


def test_round_trip_keeps_the_envelope_and_takes_the_model_from_the_path() -> None:
    request = DIALECT.decode_request(copy.deepcopy(BODY), path_model=MODEL)
    assert request.model == MODEL
    assert request.origin == "bedrock"
    assert request.stream is False
    assert request.extra == {
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["interleaved-thinking-2025-05-14"],
    }
    assert request.max_tokens == 1024
    assert encode(request) == BODY
    assert "model" not in encode(request) and "stream" not in encode(request)


@pytest.mark.parametrize("name", request_names("claude_code"))
def test_round_trip_of_captured_claude_code_bodies_in_the_bedrock_envelope(name: str) -> None:
    body = load_request(name)["body"]
    wrapped = {k: v for k, v in body.items() if k not in ("model", "stream")}
    wrapped["anthropic_version"] = "bedrock-2023-05-31"
    request = DIALECT.decode_request(copy.deepcopy(wrapped), path_model=ARN)
    assert request.model == ARN
    assert encode(request) == wrapped


def test_streaming_request_encodes_the_same_body_on_the_stream_path() -> None:
    request = DIALECT.decode_request(copy.deepcopy(BODY), path_model=MODEL)
    streaming = Request(**{**{f: getattr(request, f) for f in request.__dataclass_fields__}, "stream": True})
    assert encode(streaming) == BODY
    assert DIALECT.upstream_path(streaming) == (
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    )
    assert DIALECT.upstream_headers(streaming, {}) == {
        "accept": "application/vnd.amazon.eventstream",
        "x-amzn-bedrock-accept": "application/json",
    }
    assert DIALECT.upstream_headers(request, {}) == {"accept": "application/json"}


def test_upstream_path_encodes_colons_and_arn_slashes() -> None:
    request = Request(model=ARN, messages=())
    assert DIALECT.upstream_path(request) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
        "%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    )


def test_foreign_request_gets_the_bedrock_version_and_no_betas() -> None:
    chat = CHAT.decode_request(
        {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "stream": True},
    )
    body = encode(Request(**{**{f: getattr(chat, f) for f in chat.__dataclass_fields__}, "model": MODEL}))
    assert body == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_claude_client_request_has_no_model_stream_or_betas() -> None:
    request = CLAUDE.decode_request(
        {"model": "claude", "max_tokens": 9, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert encode(request) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_bedrock_envelope_never_reaches_anthropic_and_betas_become_the_header() -> None:
    request = DIALECT.decode_request(copy.deepcopy(BODY), path_model=MODEL)
    body = CLAUDE.encode_request(request, OPTIONS)
    expected = {k: v for k, v in BODY.items() if k not in ("anthropic_version", "anthropic_beta")}
    assert body == {"model": MODEL, **expected}
    assert CLAUDE.upstream_headers(request, {}) == {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"anthropic_version": 2023, "messages": []}, "anthropic_version"),
        ({"anthropic_beta": "a,b", "messages": []}, "anthropic_beta"),
        ({"anthropic_beta": ["a", 1], "messages": []}, "anthropic_beta"),
        ({"anthropic_version": "bedrock-2023-05-31"}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_malformed_bodies_are_request_errors(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body, path_model=MODEL)
    assert info.value.error.param == param
    assert info.value.error.status == 400


def test_body_must_be_an_object_and_the_path_must_name_a_model() -> None:
    with pytest.raises(RequestError, match="JSON object"):
        DIALECT.decode_request([], path_model=MODEL)
    with pytest.raises(RequestError, match="model id must be in the path"):
        DIALECT.decode_request({"messages": []}, path_model=None)


# --- responses ------------------------------------------------------------------------------------------------

RESPONSE_BODY: dict[str, Any] = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_02", "name": "weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 20, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3},
}


def test_response_round_trip_shows_the_client_model_and_bedrock_headers() -> None:
    request = DIALECT.decode_request(copy.deepcopy(BODY), path_model=MODEL)
    response = DIALECT.decode_response(copy.deepcopy(RESPONSE_BODY), request)
    assert response.origin == "bedrock"
    assert response.content[1] == ToolCall(id="toolu_02", name="weather", arguments='{"city":"Paris"}')
    assert response.usage == Usage(input_tokens=20, output_tokens=7, cache_read_tokens=3)
    assert orjson.loads(DIALECT.encode_response(response, request)) == {**RESPONSE_BODY, "model": MODEL}
    assert DIALECT.response_headers(response) == {
        "X-Amzn-Bedrock-Input-Token-Count": "20",
        "X-Amzn-Bedrock-Output-Token-Count": "7",
        "X-Amzn-Bedrock-Invocation-Latency": "0",
        "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": "3",
    }
    assert DIALECT.response_headers(None) == {"X-Amzn-Bedrock-Content-Type": "application/json"}


def test_invalid_upstream_response_is_a_502() -> None:
    request = Request(model=MODEL, messages=())
    with pytest.raises(UpstreamError) as info:
        DIALECT.decode_response({"content": "nope"}, request)
    assert info.value.error.status == 502


# --- streams --------------------------------------------------------------------------------------------------

STREAM_REQUEST = Request(model=MODEL, messages=(Message(role="user", content=(Text(text="hi"),)),), stream=True)
USAGE = Usage(input_tokens=12, output_tokens=5, cache_read_tokens=2)
EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_01", model="upstream", usage=Usage(input_tokens=12, cache_read_tokens=2)),
    BlockStart(index=0, kind="text"),
    TextDelta(index=0, text="Hel"),
    TextDelta(index=0, text="lo ✓"),
    BlockStop(index=0),
    BlockStart(index=1, kind="tool_call", id="toolu_03", name="weather"),
    ToolArgsDelta(index=1, partial_json='{"city":'),
    ToolArgsDelta(index=1, partial_json='"Paris"}'),
    BlockStop(index=1),
    Finish(stop_reason=StopReason.TOOL_USE, usage=USAGE),
]
# What the decoder gives back: the same events, with the model the client asked for in MessageStart.
DECODED: list[StreamEvent] = [
    MessageStart(id="msg_01", model=MODEL, usage=Usage(input_tokens=12, cache_read_tokens=2)),
    *EVENTS[1:],
]


def encoded_stream(events: list[StreamEvent]) -> bytes:
    encoder = BedrockStreamEncoder(STREAM_REQUEST)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def inner_events(data: bytes) -> list[tuple[str, Any]]:
    """Each frame as (kind, content): ("chunk", inner JSON) or ("exception", (type, payload JSON))."""
    out: list[tuple[str, Any]] = []
    for frame in EventStreamDecoder().feed(data):
        if frame.headers[":message-type"] == "event":
            assert frame.headers[":event-type"] == "chunk"
            assert frame.headers[":content-type"] == "application/json"
            out.append(("chunk", orjson.loads(base64.b64decode(orjson.loads(frame.payload)["bytes"]))))
        else:
            out.append(("exception", (frame.headers[":exception-type"], orjson.loads(frame.payload))))
    return out


def decode_split(data: bytes, cuts: list[int]) -> list[StreamEvent]:
    decoder = BedrockStreamDecoder(STREAM_REQUEST)
    out: list[StreamEvent] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        out.extend(decoder.feed(data[a:b]))
    return out + decoder.close()


def test_encoder_frames_are_messages_events_with_metrics_on_message_stop() -> None:
    frames = inner_events(encoded_stream(EVENTS))
    assert [kind for kind, _ in frames] == ["chunk"] * len(frames)
    objects = [obj for _, obj in frames]
    assert [o["type"] for o in objects] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert objects[0]["message"]["model"] == MODEL
    assert objects[-2]["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2,
        "output_tokens": 5,
    }
    assert objects[-1] == {
        "type": "message_stop",
        METRICS_KEY: {"inputTokenCount": 12, "outputTokenCount": 5, "invocationLatency": 0, "firstByteLatency": 0},
    }


def test_decoder_split_at_every_offset_gives_the_same_events() -> None:
    data = encoded_stream(EVENTS)
    assert decode_split(data, []) == DECODED
    for cut in range(1, len(data)):
        assert decode_split(data, [cut]) == DECODED, cut
    assert decode_split(data, list(range(1, len(data)))) == DECODED


def test_real_bedrock_chunk_with_metrics_decodes() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg_bdrk_9", "model": "claude", "usage": {"input_tokens": 4}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        {"type": "message_stop", METRICS_KEY: {"inputTokenCount": 4, "outputTokenCount": 1}},
    ]
    data = b"".join(chunk_frame(orjson.dumps(e)) for e in events)
    assert decode_split(data, []) == [
        MessageStart(id="msg_bdrk_9", model="claude", usage=Usage(input_tokens=4)),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="ok"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=4, output_tokens=1)),
    ]


EXCEPTIONS = [
    ("throttlingException", 429, ErrorKind.RATE_LIMIT),
    ("validationException", 400, ErrorKind.INVALID_REQUEST),
    ("modelTimeoutException", 408, ErrorKind.TIMEOUT),
    ("serviceUnavailableException", 503, ErrorKind.OVERLOADED),
    ("internalServerException", 500, ErrorKind.API_ERROR),
    ("modelStreamErrorException", 424, ErrorKind.API_ERROR),
    ("someFutureException", 500, ErrorKind.API_ERROR),
]


@pytest.mark.parametrize(("exception_type", "status", "kind"), EXCEPTIONS)
def test_exception_frames_become_stream_errors(exception_type: str, status: int, kind: ErrorKind) -> None:
    head = encoded_stream(EVENTS[:3])
    data = head + exception_frame(exception_type, "it broke") + encoded_stream(EVENTS)
    error = StreamError(error=ProxyError(status=status, kind=kind, message="it broke"))
    for cut in range(0, len(data), 7):
        assert decode_split(data, [cut]) == [*DECODED[:3], error], cut


def test_validation_exception_about_length_is_context_length() -> None:
    data = exception_frame("validationException", "Input is too long for requested model.")
    [error] = decode_split(data, [])
    assert error == StreamError(
        error=ProxyError(status=400, kind=ErrorKind.CONTEXT_LENGTH, message="Input is too long for requested model.")
    )


def test_cut_stream_and_truncated_frame_are_stream_errors() -> None:
    data = encoded_stream(EVENTS[:5])
    assert decode_split(data, []) == [*DECODED[:5], CUT]
    full = encoded_stream(EVENTS)
    truncated = full[:-3]
    assert decode_split(truncated, [])[-1] == CUT
    assert decode_split(truncated, [])[:-1] == DECODED[:-1]


def test_corrupted_crc_is_a_stream_error_and_nothing_follows() -> None:
    data = bytearray(encoded_stream(EVENTS))
    first_len = int.from_bytes(data[:4], "big")
    data[first_len + 20] ^= 0x01  # inside the second frame
    # Byte by byte, the intact first frame is delivered before the failure. (Fed whole, llm_proxy.framing.eventstream
    # reports the error without the frames completed earlier in the same chunk: the stream fails either way.)
    for cuts in (list(range(1, len(data))), [first_len], []):
        events = decode_split(bytes(data), cuts)
        assert events[:-1] == (DECODED[:1] if cuts else [])
        last = events[-1]
        assert isinstance(last, StreamError)
        assert last.error.status == 502 and last.error.kind is ErrorKind.API_ERROR
        assert last.error.message.startswith("the upstream sent a corrupt event stream")


def test_chunk_that_is_not_an_event_object_is_a_stream_error() -> None:
    bad = chunk_frame(b"[1, 2]")
    events = decode_split(encoded_stream(EVENTS[:1]) + bad, [])
    assert events[0] == DECODED[0]
    assert isinstance(events[1], StreamError) and events[1].error.status == 502
    assert len(events) == 2


def test_unknown_event_frames_are_ignored() -> None:
    from llm_proxy.framing.eventstream import encode_message

    other = encode_message([(":message-type", "event"), (":event-type", "somethingNew")], b"{}")
    data = other + encoded_stream(EVENTS) + other
    assert decode_split(data, []) == DECODED


@pytest.mark.parametrize(
    ("kind", "status", "exception_type"),
    [
        (ErrorKind.RATE_LIMIT, 429, "throttlingException"),
        (ErrorKind.INVALID_REQUEST, 400, "validationException"),
        (ErrorKind.CONTEXT_LENGTH, 400, "validationException"),
        (ErrorKind.TIMEOUT, 504, "modelTimeoutException"),
        (ErrorKind.OVERLOADED, 529, "serviceUnavailableException"),
        (ErrorKind.UPSTREAM_UNREACHABLE, 502, "serviceUnavailableException"),
        (ErrorKind.API_ERROR, 500, "internalServerException"),
        (ErrorKind.API_ERROR, 502, "modelStreamErrorException"),
        (ErrorKind.API_ERROR, 424, "modelStreamErrorException"),
        (ErrorKind.PERMISSION, 403, "internalServerException"),
    ],
)
def test_stream_error_becomes_an_exception_frame_and_ends_the_stream(
    kind: ErrorKind, status: int, exception_type: str
) -> None:
    error = StreamError(error=ProxyError(status=status, kind=kind, message="bad"))
    data = encoded_stream([*EVENTS[:3], error, *EVENTS[3:]])
    frames = inner_events(data)
    assert [k for k, _ in frames] == ["chunk"] * 3 + ["exception"]
    assert frames[-1] == ("exception", (exception_type, {"message": "bad"}))


def test_stream_error_first_is_one_exception_frame() -> None:
    error = StreamError(error=ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow"))
    assert encoded_stream([error]) == exception_frame("throttlingException", "slow")


def test_encoder_says_nothing_after_message_stop() -> None:
    encoder = BedrockStreamEncoder(STREAM_REQUEST)
    for event in EVENTS:
        encoder.encode(event)
    assert encoder.encode(CUT) == b""
    assert encoder.close() == b""
    assert encoder.content_type == "application/vnd.amazon.eventstream"


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "out_status", "error_type"),
    [
        (ErrorKind.INVALID_REQUEST, 400, 400, "ValidationException"),
        (ErrorKind.CONTEXT_LENGTH, 400, 400, "ValidationException"),
        (ErrorKind.REQUEST_TOO_LARGE, 413, 400, "ValidationException"),
        (ErrorKind.AUTHENTICATION, 401, 403, "UnrecognizedClientException"),
        (ErrorKind.PERMISSION, 403, 403, "AccessDeniedException"),
        (ErrorKind.BILLING, 402, 403, "AccessDeniedException"),
        (ErrorKind.NOT_FOUND, 404, 404, "ResourceNotFoundException"),
        (ErrorKind.TIMEOUT, 504, 408, "ModelTimeoutException"),
        (ErrorKind.API_ERROR, 424, 424, "ModelErrorException"),
        (ErrorKind.RATE_LIMIT, 429, 429, "ThrottlingException"),
        (ErrorKind.API_ERROR, 500, 500, "InternalServerException"),
        (ErrorKind.API_ERROR, 502, 500, "InternalServerException"),
        (ErrorKind.OVERLOADED, 529, 503, "ServiceUnavailableException"),
        (ErrorKind.UPSTREAM_UNREACHABLE, 502, 503, "ServiceUnavailableException"),
    ],
)
def test_encode_error(kind: ErrorKind, status: int, out_status: int, error_type: str) -> None:
    rendered = DIALECT.encode_error(ProxyError(status=status, kind=kind, message="nope"))
    assert rendered.status == out_status
    assert rendered.headers == (("x-amzn-ErrorType", error_type),)
    assert orjson.loads(rendered.body) == {"message": "nope"}
    assert rendered.content_type == "application/json"


def test_encode_error_retry_after() -> None:
    error = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow", retry_after="7")
    assert DIALECT.encode_error(error).headers == (("x-amzn-ErrorType", "ThrottlingException"), ("Retry-After", "7"))


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            429,
            b'{"message":"Too many requests, please wait before trying again."}',
            {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
            ProxyError(
                status=429, kind=ErrorKind.RATE_LIMIT, message="Too many requests, please wait before trying again."
            ),
        ),
        (
            400,
            b'{"message":"prompt is too long: 250000 tokens > 200000 maximum"}',
            {"X-Amzn-ErrorType": "ValidationException"},
            ProxyError(
                status=400, kind=ErrorKind.CONTEXT_LENGTH, message="prompt is too long: 250000 tokens > 200000 maximum"
            ),
        ),
        (
            403,
            b'{"Message":"The security token included in the request is invalid."}',
            {"x-amzn-errortype": "UnrecognizedClientException"},
            ProxyError(
                status=403,
                kind=ErrorKind.AUTHENTICATION,
                message="The security token included in the request is invalid.",
            ),
        ),
        (
            404,
            b'{"__type":"com.amazon.bedrock#ResourceNotFoundException","message":"no such model"}',
            {},
            ProxyError(status=404, kind=ErrorKind.NOT_FOUND, message="no such model"),
        ),
        (
            503,
            b'{"message":"busy"}',
            {"x-amzn-errortype": "ServiceUnavailableException", "retry-after": "3"},
            ProxyError(status=503, kind=ErrorKind.OVERLOADED, message="busy", retry_after="3"),
        ),
        (
            424,
            b'{"message":"model error"}',
            {"x-amzn-errortype": "ModelErrorException"},
            ProxyError(status=424, kind=ErrorKind.API_ERROR, message="model error"),
        ),
        (
            408,
            b'{"message":"took too long"}',
            {"x-amzn-errortype": "ModelTimeoutException"},
            ProxyError(status=408, kind=ErrorKind.TIMEOUT, message="took too long"),
        ),
        (
            502,
            b"<html>Bad Gateway</html>",
            {},
            ProxyError(status=502, kind=ErrorKind.UPSTREAM_UNREACHABLE, message="<html>Bad Gateway</html>"),
        ),
        (500, b"", {}, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="the upstream answered HTTP 500")),
        (418, b"[1]", {}, ProxyError(status=418, kind=ErrorKind.INVALID_REQUEST, message="[1]")),
    ],
)
def test_decode_error(status: int, body: bytes, headers: dict[str, str], expected: ProxyError) -> None:
    assert DIALECT.decode_error(status, body, headers) == expected


def test_error_round_trip_keeps_the_kind() -> None:
    for kind in (ErrorKind.RATE_LIMIT, ErrorKind.NOT_FOUND, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT):
        rendered = DIALECT.encode_error(ProxyError(status=500, kind=kind, message="m"))
        decoded = DIALECT.decode_error(rendered.status, rendered.body, dict(rendered.headers))
        assert decoded.kind is kind


def test_mock_answers_bedrock_with_bedrock_headers() -> None:
    from llm_proxy.upstream.mock import MockUpstream

    body = orjson.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": BODY["messages"][:1]})
    reply = MockUpstream().answer("POST", "/model/us.anthropic.x-v1%3A0/invoke", [], body)
    headers = {k.decode(): v.decode() for k, v in reply.raw_headers}
    doc = orjson.loads(asyncio.run(reply.read(1 << 20)))
    assert doc["model"] == "us.anthropic.x-v1:0"
    assert headers["X-Amzn-Bedrock-Input-Token-Count"] == str(doc["usage"]["input_tokens"])
    assert headers["X-Amzn-Bedrock-Output-Token-Count"] == str(doc["usage"]["output_tokens"])


def test_fuzz_flipped_bytes_never_escape_and_always_end_once() -> None:
    rng = random.Random(7)
    data = encoded_stream(EVENTS)
    for _ in range(400):
        corrupted = bytearray(data)
        for _ in range(rng.randrange(1, 3)):
            corrupted[rng.randrange(len(corrupted))] ^= 1 << rng.randrange(8)
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 6)))
        events = decode_split(bytes(corrupted), cuts)
        assert events, "a stream always ends with Finish or StreamError"
        assert isinstance(events[-1], Finish | StreamError)
        assert not any(isinstance(e, Finish | StreamError) for e in events[:-1])
