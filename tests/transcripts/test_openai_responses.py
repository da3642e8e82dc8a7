"""OpenAI Responses transcripts (``openai-responses``): recorded upstream streams, bodies and errors.

The files in ``tests/transcripts/openai_responses/`` copy the wire format documented for ``POST /v1/responses``
(``shared/reference/dialects.md`` section B, after OpenAI's API reference): ``event:`` + ``data:`` pairs whose
JSON repeats the ``type`` and carries an increasing ``sequence_number``, ``response.created`` and
``response.in_progress`` first, one output item at a time (``output_item.added``, its part or argument events,
``output_item.done`` with the complete item), and a terminal ``response.completed`` / ``response.incomplete`` /
``response.failed`` carrying the whole response; an ``error`` event may come before ``response.failed``. They
include what real streams add and the codec must ignore (``obfuscation``, ``logprobs``, a partial
``encrypted_content`` on ``output_item.added``: the docs say to take it only from ``output_item.done``).

Usage: ``input_tokens`` includes ``cached_tokens`` and ``output_tokens`` includes ``reasoning_tokens``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
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

DIR = "openai_responses"
RESPONSES = get_dialect("openai-responses")
REQUEST = Request(model="gpt-5-codex", messages=(), stream=True, origin="openai-responses")
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)

SERVER_ERROR = (
    "An error occurred while processing your request. You can retry your request, or contact us through our help "
    "center at help.openai.com if the error persists. Please include the request ID "
    "req_3f2a9c1be5d74e0f8a6b1c2d3e4f5a6b in your message."
)

STREAMS: dict[str, list[StreamEvent]] = {
    "stream_reasoning_text.sse": [
        MessageStart(
            id="resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", model="o4-mini-2025-04-16", created=1741290958
        ),
        BlockStart(index=0, kind="reasoning", id="rs_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"),
        ThinkingDelta(index=0, text="**Planning the greeting**\n\n"),
        ThinkingDelta(index=0, text="The user says hi."),
        ThinkingDelta(index=0, text="\n\n"),  # the second summary part: canonical thinking is one text
        ThinkingDelta(index=0, text="**Answering**\n\nKeep it short."),
        SignatureDelta(index=0, signature="gAAAAABoFINAL-encrypted-reasoning=="),  # from output_item.done only
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="Hello!"),
        TextDelta(index=1, text=" How can I help"),
        TextDelta(index=1, text=" — 今日は?"),
        BlockStop(index=1),
        Finish(
            stop_reason=StopReason.END_TURN,
            usage=Usage(input_tokens=128, output_tokens=318, cache_read_tokens=1920, reasoning_tokens=256),
        ),
    ],
    "stream_function_calls.sse": [
        MessageStart(
            id="resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b", model="gpt-5-codex", created=1756315696
        ),
        BlockStart(index=0, kind="reasoning", id="rs_68af4030baa48193a1b9e0b1a7d53c3a05438e46b5f69a3b"),
        SignatureDelta(index=0, signature="gAAAAABorC0dex-opaque=="),
        BlockStop(index=0),
        BlockStart(index=1, kind="tool_call", id="call_R6WrKtw3VJJrQPgEcvQYLGhF", name="shell"),
        ToolArgsDelta(index=1, partial_json='{"command":["bash",'),
        ToolArgsDelta(index=1, partial_json='"-lc","ls -la"],'),
        ToolArgsDelta(index=1, partial_json='"workdir":"/tmp"}'),
        BlockStop(index=1),
        BlockStart(index=2, kind="tool_call", id="call_0gRa9Zq1F4ayRjJb8wq3vNxe", name="get_weather"),
        ToolArgsDelta(index=2, partial_json='{"location":'),
        ToolArgsDelta(index=2, partial_json='"Paris, France"}'),
        BlockStop(index=2),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=5120, output_tokens=157, reasoning_tokens=64)),
    ],
    "stream_incomplete.sse": [
        MessageStart(
            id="resp_68b0c0b7c3e88196bfe1a2e3cb8b6a4c0d3c2e1f00a1b2c3", model="gpt-4.1-2025-04-14", created=1756414135
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="The first three primes"),
        TextDelta(index=0, text=" are 2, 3"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.MAX_TOKENS, usage=Usage(input_tokens=31, output_tokens=16)),
    ],
    "stream_error_event.sse": [
        MessageStart(
            id="resp_68b1d2e3f4a58197a0b1c2d3e4f5a6b70e1d2c3b4a596877", model="gpt-4.1-2025-04-14", created=1756500000
        ),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Sure"),
        StreamError(error=ProxyError(status=500, kind=ErrorKind.API_ERROR, message=SERVER_ERROR, code="server_error")),
    ],
    "stream_failed_context.sse": [
        MessageStart(
            id="resp_68b2e3f4a5b68198b1c2d3e4f5a6b7c80f1e2d3c4b5a6978", model="gpt-5-codex", created=1756600000
        ),
        StreamError(
            error=ProxyError(
                status=400,
                kind=ErrorKind.CONTEXT_LENGTH,
                message="Your input exceeds the context window of this model. Please adjust your input and try again.",
                code="context_length_exceeded",
            )
        ),
    ],
    "stream_refusal_unknown_events.sse": [
        MessageStart(
            id="resp_68c4a5b6c7d8819ad3e4f5a6b7c8d9e00f1e2d3c4b5a6970", model="gpt-4o-2024-08-06", created=1757000000
        ),
        BlockStart(index=0, kind="refusal"),
        TextDelta(index=0, text="I'm sorry, but I can't"),
        # response.future_event.added, an event type the codec does not know, is ignored
        TextDelta(index=0, text=" assist with that request."),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=57, output_tokens=12)),
    ],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_decodes_exactly_at_every_split(name: str) -> None:
    data = read_bytes(DIR, name)
    expected = STREAMS[name]
    assert decode_whole(RESPONSES.stream_decoder(REQUEST), data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(RESPONSES.stream_decoder(REQUEST), data, cut) == expected, cut


@pytest.mark.parametrize("name", ["stream_reasoning_text.sse", "stream_function_calls.sse"])
def test_recorded_stream_without_its_terminal_event_is_a_stream_error(name: str) -> None:
    """Codex: a stream that ends without ``response.completed`` is an error, not a finished answer."""
    data = read_bytes(DIR, name)
    events = decode_whole(RESPONSES.stream_decoder(REQUEST), data[: data.index(b"event: response.completed")])
    assert isinstance(events[-1], StreamError)
    assert not any(isinstance(e, Finish) for e in events)
    assert events[:-1] == STREAMS[name][: len(events) - 1]


BODIES: dict[str, Response] = {
    "response_reasoning_message.json": Response(
        id="resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        model="o3-2025-04-16",
        content=(
            Reasoning(
                provider="openai",
                id="rs_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41",
                summary=("**Counting letters**\n\nThree r's in strawberry.",),
                signature="gAAAAABnzNOsEncRyPtEdReAsOnInG==",
            ),
            Text(text='There are three "r"s in "strawberry".', extra={"annotations": [], "logprobs": []}),
        ),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=150, output_tokens=180, cache_read_tokens=1152, reasoning_tokens=128),
        created=1741476777,
        origin="openai-responses",
    ),
    "response_function_call.json": Response(
        id="resp_67ca09c5efe0819096d0511c92b8c890096610f474011cc0",
        model="gpt-4.1-2025-04-14",
        content=(
            ToolCall(
                id="call_unLAR8MvFNptuiZK6K6HCy5k",  # the call_id, which tool outputs refer to
                name="get_current_weather",
                arguments='{"location":"Boston, MA","unit":"celsius"}',
                item_id="fc_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc0",
                extra={"status": "completed"},
            ),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=291, output_tokens=23),
        created=1741294021,
        origin="openai-responses",
    ),
    "response_incomplete.json": Response(
        id="resp_68b3f4a5b6c78199c2d3e4f5a6b7c8d90a1b2c3d4e5f6071",
        model="gpt-4.1-2025-04-14",
        content=(Text(text="Once upon a", extra={"annotations": [], "logprobs": []}),),
        stop_reason=StopReason.MAX_TOKENS,
        usage=Usage(input_tokens=12, output_tokens=16),
        created=1756700000,
        origin="openai-responses",
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_recorded_response_decodes_exactly(name: str) -> None:
    assert RESPONSES.decode_response(read_json(DIR, name), REQUEST) == BODIES[name]


ERRORS: dict[str, tuple[int, ErrorKind, str | None, str | None, str | None]] = {
    # file: (status, kind, code, param, retry_after)
    "error_400_context_window.json": (400, ErrorKind.CONTEXT_LENGTH, "context_length_exceeded", "input", None),
    "error_400_invalid_prompt.json": (400, ErrorKind.INVALID_REQUEST, "invalid_prompt", None, None),
    "error_401_invalid_api_key.json": (401, ErrorKind.AUTHENTICATION, "invalid_api_key", None, None),
    "error_404_previous_response.json": (
        404,
        ErrorKind.NOT_FOUND,
        "previous_response_not_found",
        "previous_response_id",
        None,
    ),
    "error_429_rate_limit.json": (429, ErrorKind.RATE_LIMIT, "rate_limit_exceeded", None, "1"),
    "error_500_server_error.json": (500, ErrorKind.API_ERROR, "server_error", None, None),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_recorded_error_decodes_to_its_kind(name: str) -> None:
    recorded = read_error(DIR, name)
    status, kind, code, param, retry_after = ERRORS[name]
    message = read_json(DIR, name)["body"]["error"]["message"]
    assert RESPONSES.decode_error(recorded.status, recorded.body, recorded.headers) == ProxyError(
        status=status, kind=kind, message=message, param=param, code=code, retry_after=retry_after
    )


# ---------------------------------------------------------------------------------------------
# Encoding: the event sequence a Responses client (Codex) reads
# ---------------------------------------------------------------------------------------------

ENCODE_REQUEST = Request(model="client-model", messages=(), stream=True)
CANONICAL: list[StreamEvent] = [
    MessageStart(id="resp_0a1b2c3d", model="gpt-5", created=1756315696),
    BlockStart(index=0, kind="reasoning", id="rs_0a1b2c3d_0"),
    ThinkingDelta(index=0, text="Need the "),
    ThinkingDelta(index=0, text="weather."),
    SignatureDelta(index=0, signature="gAAAAABenc=="),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Checking "),
    TextDelta(index=1, text="Paris."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="call_abc", name="get_weather"),
    ToolArgsDelta(index=2, partial_json='{"city":'),
    ToolArgsDelta(index=2, partial_json='"Paris"}'),
    BlockStop(index=2),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=20, output_tokens=50, cache_read_tokens=100, reasoning_tokens=7),
    ),
]

DOCUMENTED_ORDER = [
    "response.created",
    "response.in_progress",
    # reasoning item
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
    # message item
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    # function call item
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def encoded(events: list[StreamEvent] = CANONICAL) -> list[dict[str, Any]]:
    """The encoder's events, checked for the framing every event shares: ``event:`` = ``type``, sequence numbers."""
    wire = parse_sse(encode_all(RESPONSES.stream_encoder(ENCODE_REQUEST), events))
    docs: list[dict[str, Any]] = []
    for position, item in enumerate(wire):
        doc = orjson.loads(item.data)
        assert item.event == doc["type"]
        assert doc["sequence_number"] == position
        STREAM_EVENT.validate_python(doc)  # the OpenAI SDK's own model of each event type
        docs.append(doc)
    assert "[DONE]" not in (w.data for w in wire)
    return docs


def test_encoded_stream_follows_the_documented_event_order() -> None:
    assert [d["type"] for d in encoded()] == DOCUMENTED_ORDER


def test_encoded_items_carry_the_documented_fields() -> None:
    docs = encoded()
    added = [d for d in docs if d["type"] == "response.output_item.added"]
    done = [d for d in docs if d["type"] == "response.output_item.done"]
    assert [d["output_index"] for d in added] == [0, 1, 2] == [d["output_index"] for d in done]
    assert [d["item"]["type"] for d in added] == ["reasoning", "message", "function_call"]
    assert added[1]["item"]["status"] == "in_progress" and added[2]["item"]["status"] == "in_progress"
    reasoning, message, call = (d["item"] for d in done)
    assert reasoning["id"] == "rs_0a1b2c3d_0"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Need the weather."}]
    assert reasoning["encrypted_content"] == "gAAAAABenc=="
    assert message["status"] == "completed" and message["role"] == "assistant"
    assert [(c["type"], c["text"]) for c in message["content"]] == [("output_text", "Checking Paris.")]
    assert call["call_id"] == "call_abc" and call["name"] == "get_weather"
    assert call["arguments"] == '{"city":"Paris"}' and call["status"] == "completed"

    by_type: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_type.setdefault(d["type"], []).append(d)
    message_at = {"item_id": message["id"], "output_index": 1, "content_index": 0}
    for kind in ("response.content_part.added", "response.content_part.done"):
        (part_event,) = by_type[kind]
        assert {k: part_event[k] for k in message_at} == message_at and "part" in part_event
    assert [
        (d["item_id"], d["output_index"], d["content_index"], d["delta"]) for d in by_type["response.output_text.delta"]
    ] == [(message["id"], 1, 0, "Checking "), (message["id"], 1, 0, "Paris.")]
    assert by_type["response.output_text.done"][0]["text"] == "Checking Paris."
    assert [
        (d["item_id"], d["output_index"], d["delta"]) for d in by_type["response.function_call_arguments.delta"]
    ] == [
        (call["id"], 2, '{"city":'),
        (call["id"], 2, '"Paris"}'),
    ]
    (args_done,) = by_type["response.function_call_arguments.done"]
    assert (args_done["name"], args_done["arguments"]) == ("get_weather", '{"city":"Paris"}')


def test_encoded_completed_event_carries_the_whole_response_and_usage() -> None:
    docs = encoded()
    response = docs[-1]["response"]
    assert response["status"] == "completed" and response["object"] == "response"
    assert response["id"] == docs[0]["response"]["id"] and response["id"].startswith("resp_")
    assert response["model"] == "client-model"
    assert response["output"] == [d["item"] for d in docs if d["type"] == "response.output_item.done"]
    assert response["usage"]["input_tokens"] == 120  # cached tokens included, as OpenAI counts them
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 100
    assert response["usage"]["output_tokens"] == 50
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 7}
    assert response["usage"]["total_tokens"] == 170  # Codex requires it
    assert docs[0]["response"]["status"] == "in_progress" and docs[1]["response"]["status"] == "in_progress"


@pytest.mark.parametrize(
    ("stop", "terminal", "reason"),
    [
        (StopReason.END_TURN, "response.completed", None),
        (StopReason.MAX_TOKENS, "response.incomplete", "max_output_tokens"),
        (StopReason.CONTENT_FILTER, "response.incomplete", "content_filter"),
    ],
)
def test_encoded_terminal_event_reflects_the_stop_reason(stop: StopReason, terminal: str, reason: str | None) -> None:
    docs = encoded([*CANONICAL[:10], Finish(stop_reason=stop, usage=Usage(input_tokens=3, output_tokens=4))])
    last = docs[-1]
    assert last["type"] == terminal
    assert last["response"]["status"] == terminal.removeprefix("response.")
    details = last["response"]["incomplete_details"]
    assert (details["reason"] if details else None) == reason


def test_encoded_stream_error_ends_with_response_failed() -> None:
    error = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="Slow down")
    docs = encoded([*CANONICAL[:8], StreamError(error=error), *CANONICAL[8:]])
    assert docs[-1]["type"] == "response.failed"
    assert docs[-1]["response"]["status"] == "failed"
    assert docs[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Slow down"}
    assert [d["type"] for d in docs].count("response.failed") == 1
    assert "response.completed" not in [d["type"] for d in docs]
