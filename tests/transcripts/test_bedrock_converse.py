"""Bedrock Converse transcripts (``bedrock-converse``): event streams, bodies and errors as documented.

The streams in ``tests/transcripts/bedrock_converse/`` follow botocore's service model for bedrock-runtime
(``ConverseStreamOutput``: ``messageStart``, ``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``,
``messageStop``, ``metadata`` and five exceptions) and the AWS documentation of ConverseStream: text and reasoning
blocks open with their first delta, only tool uses have a ``contentBlockStart``, the signature is the last delta of a
reasoning block, usage arrives in ``metadata`` after ``messageStop``. Each line is one frame:
``{"event": <:event-type>, "payload": <the event JSON, with Bedrock's "p" padding>}`` or
``{"exception": <:exception-type>, "payload": {...}}``. ``frames()`` builds the bytes with ``encode_message`` in the
documented header layout, and a test checks that botocore reads them, so the files do not depend on the codec.
Converse's HTTP errors are InvokeModel's (``x-amzn-ErrorType`` and ``{"message"}``): the ``bedrock`` recordings.
"""

from __future__ import annotations

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
    Tool,
    ToolArgsDelta,
    ToolCall,
    Usage,
)
from llm_proxy.dialects import get_dialect
from llm_proxy.framing.eventstream import HeaderValue, encode_message
from tests.transcripts.common import decode_split, decode_whole, encode_all, read_error, read_json, read_jsonl
from tests.transcripts.test_bedrock import ERRORS

DIR = "bedrock_converse"
CONVERSE = get_dialect("bedrock-converse")
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
REQUEST = Request(model=MODEL, messages=(), stream=True, origin="bedrock-converse")


def frame(line: dict[str, Any]) -> bytes:
    headers: list[tuple[str, HeaderValue]]
    if "exception" in line:
        headers = [(":exception-type", line["exception"]), (":content-type", "application/json")]
        headers.append((":message-type", "exception"))
    else:
        headers = [(":event-type", line["event"]), (":content-type", "application/json"), (":message-type", "event")]
    return encode_message(headers, orjson.dumps(line["payload"]))


def frames(name: str) -> bytes:
    return b"".join(frame(line) for line in read_jsonl(DIR, name))


START = MessageStart(id="converse", model=MODEL)
STREAMS: dict[str, list[StreamEvent]] = {
    "stream_text.jsonl": [
        START,
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Hello"),
        TextDelta(index=0, text=" from Converse — ¡hola!"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=19, output_tokens=11, cache_read_tokens=2048)),
    ],
    "stream_reasoning_tool_use.jsonl": [
        START,
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="The user asks for the time in Tokyo"),
        ThinkingDelta(index=0, text="; use the clock tool."),
        SignatureDelta(index=0, signature="ErUBCkYIBhgCIkDr5GQ3cSm0gKkKlLk0u1cCOi7nQ8pYp4b3U3JpXw=="),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="Let me check."),
        BlockStop(index=1),
        BlockStart(index=2, kind="tool_call", id="tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", name="clock"),
        ToolArgsDelta(index=2, partial_json=""),
        ToolArgsDelta(index=2, partial_json='{"tz": "Asia/'),
        ToolArgsDelta(index=2, partial_json='Tokyo"}'),
        BlockStop(index=2),
        Finish(
            stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=611, output_tokens=74, cache_write_tokens=1800)
        ),
    ],
    "stream_redacted_reasoning.jsonl": [
        START,
        BlockStart(index=0, kind="redacted_thinking", data="EqoKCjQCFl9XOredacted"),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="Done."),
        BlockStop(index=1),
        Finish(stop_reason=StopReason.MAX_TOKENS, usage=Usage(input_tokens=58, output_tokens=200)),
    ],
    "stream_throttling.jsonl": [
        START,
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Sure"),
        StreamError(
            error=ProxyError(
                status=429, kind=ErrorKind.RATE_LIMIT, message="Too many tokens, please wait before trying again."
            )
        ),
    ],
    "stream_model_stream_error.jsonl": [
        START,
        StreamError(
            error=ProxyError(
                status=424,
                kind=ErrorKind.API_ERROR,
                message="Model stream error: the model produced an invalid response.",
            )
        ),
    ],
}


def boto3_events(data: bytes) -> list[dict[str, Any]]:
    """The stream as boto3's ``converse_stream`` yields it (botocore's EventStream over the service model)."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("ConverseStream").output_shape.members["stream"]

    class Raw:
        def stream(self) -> list[bytes]:
            return [data]

    return list(EventStream(Raw(), shape, EventStreamJSONParser(), "ConverseStream"))


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_frames_are_what_boto3_reads(name: str) -> None:
    lines = read_jsonl(DIR, name)
    if any("exception" in line for line in lines):
        with pytest.raises(EventStreamError) as raised:
            boto3_events(frames(name))
        assert raised.value.response["Error"]["Code"] == lines[-1]["exception"]
        return
    events = boto3_events(frames(name))
    assert [next(iter(e)) for e in events] == [line["event"] for line in lines]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_exactly_at_every_split(name: str) -> None:
    data = frames(name)
    expected = STREAMS[name]
    assert decode_whole(CONVERSE.stream_decoder(REQUEST), data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(CONVERSE.stream_decoder(REQUEST), data, cut) == expected, cut


def test_a_stream_cut_before_message_stop_is_an_error_after_it_only_usage_is_missing() -> None:
    lines = read_jsonl(DIR, "stream_text.jsonl")
    before_stop = b"".join(frame(line) for line in lines[:-2])
    events = decode_whole(CONVERSE.stream_decoder(REQUEST), before_stop)
    assert events[:-1] == STREAMS["stream_text.jsonl"][:-1]
    assert isinstance(events[-1], StreamError) and events[-1].error.status == 502
    without_metadata = b"".join(frame(line) for line in lines[:-1])
    events = decode_whole(CONVERSE.stream_decoder(REQUEST), without_metadata)
    assert events[-1] == Finish(stop_reason=StopReason.END_TURN)


BODIES: dict[str, Response] = {
    "response_text.json": Response(
        id="",
        model=MODEL,
        content=(Text(text="Paris is the capital of France."),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=14, output_tokens=10),
        origin="bedrock-converse",
    ),
    "response_tool_use.json": Response(
        id="",
        model=MODEL,
        content=(
            Reasoning(
                provider="anthropic",
                text="The user wants a song; call top_song.",
                signature="EqoBCkgIARABGAIiQM0nQ8pYp4b3U3JpXw==",
            ),
            Text(text="I'll look that up."),
            ToolCall(id="tooluse_hbTgdi0CSLq_hM4P8csZJA", name="top_song", arguments='{"sign":"WZPZ"}'),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=375, output_tokens=61, cache_read_tokens=1024, cache_write_tokens=512),
        origin="bedrock-converse",
    ),
    "response_guardrail.json": Response(
        id="",
        model=MODEL,
        content=(Text(text="Sorry, the model cannot answer this question."),),
        stop_reason=StopReason.CONTENT_FILTER,
        usage=Usage(input_tokens=21, output_tokens=9),
        extra={
            "trace": {"guardrail": {"modelOutput": ["Sorry, the model cannot answer this question."]}},
            "stopReason": "guardrail_intervened",
        },
        origin="bedrock-converse",
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_recorded_response_decodes_exactly_and_encodes_back(name: str) -> None:
    recorded = read_json(DIR, name)
    response = CONVERSE.decode_response(recorded, REQUEST)
    assert response == BODIES[name]
    again = orjson.loads(CONVERSE.encode_response(response, REQUEST))
    assert again == {**recorded, "metrics": {"latencyMs": 0}}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_bedrock_errors_decode_to_their_kind(name: str) -> None:
    recorded = read_error("bedrock", name)
    message = read_json("bedrock", name)["body"]["message"]
    assert CONVERSE.decode_error(recorded.status, recorded.body, recorded.headers) == ProxyError(
        status=recorded.status, kind=ERRORS[name], message=message
    )


# ---------------------------------------------------------------------------------------------
# Encoding: the frames boto3 reads
# ---------------------------------------------------------------------------------------------

CANONICAL: list[StreamEvent] = [
    MessageStart(id="chatcmpl-0a1b2c", model="gpt-5", usage=Usage(input_tokens=30, output_tokens=1)),
    BlockStart(index=0, kind="reasoning", id="rs_1"),
    ThinkingDelta(index=0, text="Thinking."),
    SignatureDelta(index=0, signature="enc-1"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Calling "),
    TextDelta(index=1, text="the tool."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="call_01abc", name="clock"),
    ToolArgsDelta(index=2, partial_json='{"tz":'),
    ToolArgsDelta(index=2, partial_json='"UTC"}'),
    BlockStop(index=2),
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=30, output_tokens=42, cache_read_tokens=8)),
]


def test_encoded_stream_reads_in_boto3_as_the_documented_events() -> None:
    events = boto3_events(encode_all(CONVERSE.stream_encoder(REQUEST), CANONICAL))
    assert [next(iter(e)) for e in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert events[1]["contentBlockDelta"] == {
        "contentBlockIndex": 0,
        "delta": {"reasoningContent": {"text": "Thinking."}},
    }
    signature = events[2]["contentBlockDelta"]["delta"]["reasoningContent"]["signature"]
    assert signature.startswith("lpx1.")  # the OpenAI reasoning item rides in the signature
    assert events[7]["contentBlockStart"] == {
        "contentBlockIndex": 2,
        "start": {"toolUse": {"toolUseId": "call_01abc", "name": "clock"}},
    }
    assert "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events[8:10]) == '{"tz":"UTC"}'
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}
    assert events[-1]["metadata"] == {
        "usage": {"inputTokens": 30, "outputTokens": 42, "totalTokens": 80, "cacheReadInputTokens": 8},
        "metrics": {"latencyMs": 0},
    }


def test_encoded_stream_decodes_back_to_the_same_events() -> None:
    native: list[StreamEvent] = [e for e in CANONICAL if not isinstance(e, MessageStart)]
    native = [BlockStart(index=0, kind="thinking") if e == CANONICAL[1] else e for e in native]
    native = [SignatureDelta(index=0, signature="sig") if isinstance(e, SignatureDelta) else e for e in native]
    data = encode_all(CONVERSE.stream_encoder(REQUEST), native)
    assert decode_whole(CONVERSE.stream_decoder(REQUEST), data) == [START, *native]


@pytest.mark.parametrize(
    ("error", "exception_type"),
    [
        (ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow down"), "throttlingException"),
        (ProxyError(status=400, kind=ErrorKind.INVALID_REQUEST, message="bad"), "validationException"),
        (ProxyError(status=504, kind=ErrorKind.TIMEOUT, message="late"), "modelStreamErrorException"),
        (ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="busy"), "serviceUnavailableException"),
        (ProxyError(status=500, kind=ErrorKind.API_ERROR, message="oops"), "internalServerException"),
        (ProxyError(status=502, kind=ErrorKind.API_ERROR, message="cut"), "modelStreamErrorException"),
    ],
)
def test_encoded_stream_error_is_a_declared_exception_that_boto3_raises(error: ProxyError, exception_type: str) -> None:
    data = encode_all(CONVERSE.stream_encoder(REQUEST), [*CANONICAL[:7], StreamError(error=error), *CANONICAL[7:]])
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    last = list(buffer)[-1]
    assert (last.headers[":message-type"], last.headers[":exception-type"]) == ("exception", exception_type)
    with pytest.raises(EventStreamError) as raised:
        boto3_events(data)
    assert raised.value.response["Error"] == {"Code": exception_type, "Message": error.message}


def test_a_freeform_tool_call_streams_back_as_its_raw_text() -> None:
    request = Request(model=MODEL, messages=(), stream=True, tools=(Tool(name="apply_patch", kind="custom"),))
    lines = [
        {"event": "messageStart", "payload": {"role": "assistant"}},
        {
            "event": "contentBlockStart",
            "payload": {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "apply_patch"}}},
        },
        {
            "event": "contentBlockDelta",
            "payload": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"input": "*** Be'}}},
        },
        {
            "event": "contentBlockDelta",
            "payload": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": 'gin\\n"}'}}},
        },
        {"event": "contentBlockStop", "payload": {"contentBlockIndex": 0}},
        {"event": "messageStop", "payload": {"stopReason": "tool_use"}},
        {
            "event": "metadata",
            "payload": {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"latencyMs": 1}},
        },
    ]
    events = decode_whole(CONVERSE.stream_decoder(request), b"".join(frame(line) for line in lines))
    assert events == [
        START,
        BlockStart(index=0, kind="tool_call", id="t1", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=0, partial_json="*** Begin\n"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=1, output_tokens=2)),
    ]


@pytest.mark.parametrize("name", ["stream_reasoning_tool_use.jsonl", "stream_redacted_reasoning.jsonl"])
def test_a_mangled_event_ends_the_stream_cleanly(name: str) -> None:
    """Each payload field of each event deleted or replaced: the decoder never raises, and the stream ends with
    exactly one Finish or StreamError."""
    lines = read_jsonl(DIR, name)
    for number, line in enumerate(lines):
        for key in line["payload"]:
            values: tuple[Any, ...] = (None, 7, "x", [], {}, {"text": 1}, "__delete__")
            for value in values:
                payload = {k: v for k, v in line["payload"].items() if k != key or value != "__delete__"}
                if value != "__delete__":
                    payload[key] = value
                mangled = [*lines[:number], {**line, "payload": payload}, *lines[number + 1 :]]
                events = decode_whole(CONVERSE.stream_decoder(REQUEST), b"".join(frame(x) for x in mangled))
                ends = [e for e in events if isinstance(e, Finish | StreamError)]
                assert len(ends) == 1 and events[-1] is ends[0], (number, key, value)
