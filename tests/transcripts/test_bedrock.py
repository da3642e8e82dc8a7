"""AWS Bedrock InvokeModel transcripts (``bedrock``): recorded event streams, bodies and errors.

Bedrock's stream is binary, so the files in ``tests/transcripts/bedrock/`` record it one frame per line
(``stream_*.jsonl``): ``{"chunk": <inner Messages event>, "p": <padding>}`` for an event frame, or
``{"exception": <:exception-type>, "payload": {...}}`` for an exception frame. The inner events are the Messages
stream events as Bedrock sends them for Anthropic models (``msg_bdrk_`` ids, ``message_stop`` carrying
``amazon-bedrock-invocationMetrics``), per ``shared/reference/dialects.md`` section D and the AWS documentation of
InvokeModelWithResponseStream. ``frames()`` turns a file into event-stream bytes with the project's framing
helper ``encode_message``, in the documented layout: headers ``:event-type=chunk``, ``:content-type``,
``:message-type=event`` and a payload ``{"bytes": base64(event), "p": padding}``; a test checks that botocore
reads those bytes back, so the transcripts do not depend on the codec under test.

HTTP errors (``error_*.json``) are ``{"message": ...}`` bodies with the type in the ``x-amzn-ErrorType`` header,
which real Bedrock suffixes with ``:http://internal.amazon.com/coral/...``.
"""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
import orjson
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    MessageStart,
    ProxyError,
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
from llm_proxy.framing.eventstream import HeaderValue, encode_message
from tests.transcripts.common import decode_split, decode_whole, encode_all, read_error, read_json, read_jsonl

DIR = "bedrock"
BEDROCK = get_dialect("bedrock")
REQUEST = Request(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=(), stream=True, origin="bedrock")


def frame(line: dict[str, Any]) -> bytes:
    """One recorded frame (a line of a ``stream_*.jsonl`` file) as event-stream bytes."""
    headers: list[tuple[str, HeaderValue]]
    if "exception" in line:
        headers = [(":exception-type", line["exception"]), (":content-type", "application/json")]
        headers.append((":message-type", "exception"))
        return encode_message(headers, orjson.dumps(line["payload"]))
    headers = [(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")]
    inner = base64.b64encode(orjson.dumps(line["chunk"])).decode("ascii")
    return encode_message(headers, orjson.dumps({"bytes": inner, "p": line["p"]}))


def frames(name: str) -> bytes:
    return b"".join(frame(line) for line in read_jsonl(DIR, name))


STREAMS: dict[str, list[StreamEvent]] = {
    "stream_text.jsonl": [
        MessageStart(
            id="msg_bdrk_01K5Wcc6xJYLDJdpX8fzkmiA",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=19, output_tokens=4, cache_read_tokens=2048),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Hello"),
        TextDelta(index=0, text=" from Bedrock — ¡hola!"),
        BlockStop(index=0),
        Finish(
            stop_reason=StopReason.END_TURN,
            usage=Usage(input_tokens=19, output_tokens=11, cache_read_tokens=2048),
        ),
    ],
    "stream_thinking_tool_use.jsonl": [
        MessageStart(
            id="msg_bdrk_01RrX3QW2oQ8fYj6bT7Kc4Vd",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=611, output_tokens=8, cache_write_tokens=1800),
        ),
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="The user asks for the time in Tokyo"),
        ThinkingDelta(index=0, text="; use the clock tool."),
        SignatureDelta(index=0, signature="ErUBCkYIBhgCIkDr5GQ3cSm0gKkKlLk0u1cCOi7nQ8pYp4b3U3JpXw=="),
        BlockStop(index=0),
        BlockStart(index=1, kind="tool_call", id="toolu_bdrk_01Y1mHGEzjwjTXPXm7qJAv5w", name="clock"),
        ToolArgsDelta(index=1, partial_json=""),
        ToolArgsDelta(index=1, partial_json='{"tz": "Asia/'),
        ToolArgsDelta(index=1, partial_json='Tokyo"}'),
        BlockStop(index=1),
        Finish(
            stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=611, output_tokens=74, cache_write_tokens=1800)
        ),
    ],
    "stream_throttling.jsonl": [
        MessageStart(
            id="msg_bdrk_01Qp8mXc6Hn2sJt4Vw9Ly3Ez",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=12, output_tokens=1),
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Sure"),
        StreamError(
            error=ProxyError(
                status=429, kind=ErrorKind.RATE_LIMIT, message="Too many tokens, please wait before trying again."
            )
        ),
    ],
    "stream_model_stream_error.jsonl": [
        MessageStart(
            id="msg_bdrk_01Hh2Jq7Rb5Ck9Xw3Ns8Tg6F",
            model="claude-sonnet-4-5-20250929",
            usage=Usage(input_tokens=40, output_tokens=1),
        ),
        StreamError(
            error=ProxyError(
                status=424,
                kind=ErrorKind.API_ERROR,
                message="Model stream error: the model produced an invalid response.",
            )
        ),
    ],
    "stream_validation_too_long.jsonl": [
        StreamError(
            error=ProxyError(
                status=400, kind=ErrorKind.CONTEXT_LENGTH, message="Input is too long for requested model."
            )
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_frames_are_valid_event_stream_bytes_for_botocore(name: str) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(frames(name))
    messages = list(buffer)
    lines = read_jsonl(DIR, name)
    assert len(messages) == len(lines)
    for message, line in zip(messages, lines, strict=True):
        if "chunk" in line:
            assert message.headers[":message-type"] == "event" and message.headers[":event-type"] == "chunk"
            assert orjson.loads(base64.b64decode(orjson.loads(message.payload)["bytes"])) == line["chunk"]
        else:
            assert message.headers[":exception-type"] == line["exception"]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_exactly_at_every_split(name: str) -> None:
    data = frames(name)
    expected = STREAMS[name]
    assert decode_whole(BEDROCK.stream_decoder(REQUEST), data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(BEDROCK.stream_decoder(REQUEST), data, cut) == expected, cut


def test_recorded_stream_cut_inside_a_frame_is_a_stream_error() -> None:
    data = frames("stream_text.jsonl")
    last = frame(read_jsonl(DIR, "stream_text.jsonl")[-1])
    events = decode_whole(BEDROCK.stream_decoder(REQUEST), data[: len(data) - len(last) // 2])
    assert events[:-1] == STREAMS["stream_text.jsonl"][:-1]
    assert isinstance(events[-1], StreamError) and events[-1].error.kind is ErrorKind.API_ERROR


EXCEPTIONS: dict[str, tuple[int, ErrorKind]] = {
    # every stream exception type the docs list -> (status, kind)
    "internalServerException": (500, ErrorKind.API_ERROR),
    "modelStreamErrorException": (424, ErrorKind.API_ERROR),
    "validationException": (400, ErrorKind.INVALID_REQUEST),
    "throttlingException": (429, ErrorKind.RATE_LIMIT),
    "modelTimeoutException": (408, ErrorKind.TIMEOUT),
    "serviceUnavailableException": (503, ErrorKind.OVERLOADED),
}


@pytest.mark.parametrize("exception_type", sorted(EXCEPTIONS))
def test_every_documented_stream_exception_decodes_to_its_kind(exception_type: str) -> None:
    start = read_jsonl(DIR, "stream_text.jsonl")[0]
    data = frame(start) + frame({"exception": exception_type, "payload": {"message": "boom"}})
    status, kind = EXCEPTIONS[exception_type]
    assert decode_whole(BEDROCK.stream_decoder(REQUEST), data) == [
        STREAMS["stream_text.jsonl"][0],
        StreamError(error=ProxyError(status=status, kind=kind, message="boom")),
    ]


BODIES: dict[str, Response] = {
    "response_text.json": Response(
        id="msg_bdrk_01BFq9MqZr3RWWxYJpzBs7eJ",
        model="claude-sonnet-4-5-20250929",
        content=(Text(text="Paris is the capital of France."),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=14, output_tokens=10),
        extra={"stop_sequence": None},
        origin="bedrock",
    ),
    "response_tool_use.json": Response(
        id="msg_bdrk_01CBcwS6XMdqwKUZqM4Ymbz1",
        model="claude-3-7-sonnet-20250219",
        content=(
            Text(text="I'll look that up."),
            ToolCall(id="toolu_bdrk_01NmN5cT1BqzTn3Lq8R4nkGd", name="top_song", arguments='{"sign":"WZPZ"}'),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=375, output_tokens=61, cache_read_tokens=1024, cache_write_tokens=512),
        extra={"stop_sequence": None},
        origin="bedrock",
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_recorded_response_decodes_exactly(name: str) -> None:
    assert BEDROCK.decode_response(read_json(DIR, name), REQUEST) == BODIES[name]


ERRORS: dict[str, ErrorKind] = {
    "error_400_input_too_long.json": ErrorKind.CONTEXT_LENGTH,
    "error_400_validation.json": ErrorKind.INVALID_REQUEST,
    "error_403_access_denied.json": ErrorKind.PERMISSION,
    "error_403_unrecognized_client.json": ErrorKind.AUTHENTICATION,
    "error_404_resource_not_found.json": ErrorKind.NOT_FOUND,
    "error_408_model_timeout.json": ErrorKind.TIMEOUT,
    "error_424_model_error.json": ErrorKind.API_ERROR,
    "error_429_throttling.json": ErrorKind.RATE_LIMIT,
    "error_500_internal_server.json": ErrorKind.API_ERROR,
    "error_503_service_unavailable.json": ErrorKind.OVERLOADED,
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_error_decodes_to_its_kind(name: str) -> None:
    recorded = read_error(DIR, name)
    message = read_json(DIR, name)["body"]["message"]
    assert BEDROCK.decode_error(recorded.status, recorded.body, recorded.headers) == ProxyError(
        status=recorded.status, kind=ERRORS[name], message=message
    )


# ---------------------------------------------------------------------------------------------
# Encoding: the frames boto3 reads
# ---------------------------------------------------------------------------------------------

ENCODE_REQUEST = Request(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=(), stream=True)
CANONICAL: list[StreamEvent] = [
    MessageStart(id="chatcmpl-0a1b2c", model="gpt-5", usage=Usage(input_tokens=30, output_tokens=1)),
    BlockStart(index=0, kind="text"),
    TextDelta(index=0, text="Calling "),
    TextDelta(index=0, text="the tool."),
    BlockStop(index=0),
    BlockStart(index=1, kind="tool_call", id="toolu_01abc", name="clock"),
    ToolArgsDelta(index=1, partial_json='{"tz":'),
    ToolArgsDelta(index=1, partial_json='"UTC"}'),
    BlockStop(index=1),
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=30, output_tokens=42)),
]


def boto3_events(data: bytes) -> list[dict[str, Any]]:
    """The stream as boto3 yields it: botocore's EventStream over the bedrock-runtime service model."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("InvokeModelWithResponseStream").output_shape.members["body"]

    class Raw:
        def stream(self) -> list[bytes]:
            return [data]

    stream = EventStream(Raw(), shape, EventStreamJSONParser(), "InvokeModelWithResponseStream")
    return list(stream)


def test_encoded_frames_carry_the_documented_headers_and_payload() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_all(BEDROCK.stream_encoder(ENCODE_REQUEST), CANONICAL))
    messages = list(buffer)
    assert messages
    for message in messages:
        assert message.headers == {
            ":message-type": "event",
            ":event-type": "chunk",
            ":content-type": "application/json",
        }
        payload = orjson.loads(message.payload)
        assert set(payload) <= {"bytes", "p"} and isinstance(payload["bytes"], str)
        base64.b64decode(payload["bytes"], validate=True)


def test_encoded_stream_reads_in_boto3_as_the_documented_messages_events() -> None:
    chunks = boto3_events(encode_all(BEDROCK.stream_encoder(ENCODE_REQUEST), CANONICAL))
    assert all(set(chunk) == {"chunk"} for chunk in chunks)
    inner = [orjson.loads(chunk["chunk"]["bytes"]) for chunk in chunks]
    assert [e["type"] for e in inner] == [
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
    assert inner[0]["message"]["content"] == [] and inner[0]["message"]["stop_reason"] is None
    assert inner[5]["content_block"] == {"type": "tool_use", "id": "toolu_01abc", "name": "clock", "input": {}}
    assert "".join(e["delta"]["partial_json"] for e in inner[6:8]) == '{"tz":"UTC"}'
    assert inner[-2]["delta"]["stop_reason"] == "tool_use"
    assert inner[-2]["usage"]["output_tokens"] == 42
    metrics = inner[-1]["amazon-bedrock-invocationMetrics"]
    assert set(metrics) >= {"inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency"}
    assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (30, 42)


@pytest.mark.parametrize(
    ("error", "exception_type"),
    [
        (ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow down"), "throttlingException"),
        (ProxyError(status=400, kind=ErrorKind.INVALID_REQUEST, message="bad"), "validationException"),
        (ProxyError(status=504, kind=ErrorKind.TIMEOUT, message="late"), "modelTimeoutException"),
        (ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="busy"), "serviceUnavailableException"),
        (ProxyError(status=500, kind=ErrorKind.API_ERROR, message="oops"), "internalServerException"),
        (ProxyError(status=502, kind=ErrorKind.API_ERROR, message="cut"), "modelStreamErrorException"),
    ],
)
def test_encoded_stream_error_is_a_documented_exception_that_boto3_raises(
    error: ProxyError, exception_type: str
) -> None:
    data = encode_all(
        BEDROCK.stream_encoder(ENCODE_REQUEST), [*CANONICAL[:3], StreamError(error=error), *CANONICAL[3:]]
    )
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    last = list(buffer)[-1]
    assert last.headers[":message-type"] == "exception"
    assert last.headers[":exception-type"] == exception_type
    assert orjson.loads(last.payload) == {"message": error.message}
    with pytest.raises(EventStreamError) as raised:
        boto3_events(data)
    assert raised.value.response["Error"] == {"Code": exception_type, "Message": error.message}
