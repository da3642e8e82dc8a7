"""Gemini transcripts (``gemini``): recorded ``streamGenerateContent`` streams, answers and errors.

The files in ``tests/transcripts/gemini/`` copy the wire format Google documents for the Gemini API
(``ai.google.dev/api/generate-content``, the ``GenerateContentResponse`` reference, and what the google-genai SDK
parses): each stream chunk is a whole ``GenerateContentResponse`` holding the next parts of the candidate, the
last one carries ``finishReason`` and the full ``usageMetadata``; with ``?alt=sse`` chunks are ``data:`` lines
separated by ``\\r\\n\\r\\n``, without it one JSON array written progressively (``[{..},\\r\\n{..}]``). A function
call is STOP; thought parts carry ``thought: true``; the first call after thinking carries a ``thoughtSignature``.
Errors are ``{"error": {"code", "message", "status"}}`` with a google.rpc status name.

Usage: ``promptTokenCount`` includes ``cachedContentTokenCount`` and ``candidatesTokenCount`` excludes
``thoughtsTokenCount``; canonical ``input_tokens`` excludes the cache and ``output_tokens`` includes thoughts.
"""

from __future__ import annotations

import orjson
import pytest
from google.genai import types

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    MessageStart,
    Reasoning,
    Request,
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
from llm_proxy.framing.carry import decode_carry
from tests.transcripts.common import decode_split, decode_whole, encode_all, read_bytes, read_error, read_json

DIR = "gemini"
GEMINI = get_dialect("gemini")
REQUEST = Request(model="gemini-2.5-flash", messages=(), stream=True, origin="gemini")
SIGNATURE = "CiQB0e2Kb7zvVQ3JVKRSmxG2uR1iI0wDRg6Yw1k4m3o0rWl7lnQKbQHR7Ypv"

TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="xDwraJ_wFIOuz7IP-4SdiQ8", model="gemini-2.5-flash"),
    BlockStart(index=0, kind="text"),
    TextDelta(index=0, text="The capital"),
    TextDelta(index=0, text=" of France is Paris. Ünïcödé ✓"),
    BlockStop(index=0),
    Finish(
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=5, output_tokens=37, cache_read_tokens=4, reasoning_tokens=25),
    ),
]


def _decode(name: str) -> list[StreamEvent]:
    return decode_whole(GEMINI.stream_decoder(REQUEST), read_bytes(DIR, name))


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_text.json"])
def test_text_stream_in_either_framing(name: str) -> None:
    assert _decode(name) == TEXT_EVENTS


@pytest.mark.parametrize(
    "name",
    [
        "stream_text.sse",
        "stream_text.json",
        "stream_thinking_function_calls.sse",
        "stream_cut.sse",
        "stream_cut.json",
        "stream_error.sse",
        "stream_error.json",
    ],
)
def test_split_at_every_byte_gives_the_same_events(name: str) -> None:
    data = read_bytes(DIR, name)
    whole = decode_whole(GEMINI.stream_decoder(REQUEST), data)
    for cut in range(len(data) + 1):
        assert decode_split(GEMINI.stream_decoder(REQUEST), data, cut) == whole, cut


def test_thinking_then_signed_function_calls() -> None:
    events = _decode("stream_thinking_function_calls.sse")
    kinds = [(type(e).__name__, getattr(e, "kind", None)) for e in events]
    assert kinds == [
        ("MessageStart", None),
        ("BlockStart", "thinking"),
        ("ThinkingDelta", None),
        ("BlockStop", None),
        ("BlockStart", "thinking"),  # the call's signature: a block of its own, before the call
        ("SignatureDelta", None),
        ("BlockStop", None),
        ("BlockStart", "tool_call"),
        ("ToolArgsDelta", None),
        ("BlockStop", None),
        ("BlockStart", "tool_call"),
        ("ToolArgsDelta", None),
        ("BlockStop", None),
        ("Finish", None),
    ]
    assert isinstance(events[2], ThinkingDelta) and events[2].text.startswith("**Planning")
    signature = events[5]
    assert isinstance(signature, SignatureDelta)
    assert decode_carry(signature.signature, "gemini-signature") == {"s": SIGNATURE, "a": 1}
    first, second = events[7], events[10]
    assert isinstance(first, BlockStart) and isinstance(second, BlockStart)
    assert first.name == "get_weather" and second.name == "get_time"
    assert first.id and second.id and first.id != second.id  # minted: Gemini sent none
    assert events[8] == ToolArgsDelta(index=2, partial_json='{"city":"Paris"}')
    finish = events[-1]
    assert finish == Finish(
        stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=40, output_tokens=80, reasoning_tokens=50)
    )


@pytest.mark.parametrize("name", ["stream_cut.sse", "stream_cut.json"])
def test_a_stream_without_finish_reason_is_cut_short(name: str) -> None:
    events = _decode(name)
    assert not any(isinstance(e, Finish) for e in events)
    assert isinstance(events[-1], StreamError)
    assert events[:3] == [
        MessageStart(id="r-cut", model="gemini-2.5-flash"),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Once upon"),
    ]


@pytest.mark.parametrize("name", ["stream_error.sse", "stream_error.json"])
def test_in_stream_error(name: str) -> None:
    events = _decode(name)
    last = events[-1]
    assert isinstance(last, StreamError)
    assert last.error.kind is ErrorKind.OVERLOADED and last.error.status == 503
    assert "overloaded" in last.error.message
    assert sum(isinstance(e, StreamError) for e in events) == 1


def test_response_text() -> None:
    response = GEMINI.decode_response(read_json(DIR, "response_text.json"), REQUEST)
    assert response.id == "Nc4raMbTI6Kkz7IP6vGoCA" and response.model == "gemini-2.0-flash"
    assert response.content == (Text(text="Hello! How can I help you today?"),)
    assert response.stop_reason is StopReason.END_TURN
    assert response.usage == Usage(input_tokens=5, output_tokens=9)


def test_response_thinking_function_call() -> None:
    response = GEMINI.decode_response(read_json(DIR, "response_thinking_function_call.json"), REQUEST)
    thought, signed, call = response.content
    assert isinstance(thought, Reasoning) and thought.text == "Let me check." and thought.signature is None
    assert isinstance(signed, Reasoning) and decode_carry(signed.signature or "", "gemini-signature")["s"] == SIGNATURE
    assert isinstance(call, ToolCall) and call.id == "fc-1" and call.arguments == '{"city":"Paris"}'
    assert response.stop_reason is StopReason.TOOL_USE
    assert response.usage == Usage(input_tokens=28, output_tokens=95, cache_read_tokens=32, reasoning_tokens=80)


@pytest.mark.parametrize(
    ("name", "stop"),
    [
        ("response_recitation.json", StopReason.CONTENT_FILTER),
        ("response_max_tokens.json", StopReason.MAX_TOKENS),
        ("response_prompt_blocked.json", StopReason.CONTENT_FILTER),
    ],
)
def test_response_stop_reasons(name: str, stop: StopReason) -> None:
    assert GEMINI.decode_response(read_json(DIR, name), REQUEST).stop_reason is stop


@pytest.mark.parametrize(
    "name",
    [
        "response_text.json",
        "response_thinking_function_call.json",
        "response_recitation.json",
        "response_max_tokens.json",
    ],
)
def test_responses_re_encode_equal(name: str) -> None:
    doc = read_json(DIR, name)
    response = GEMINI.decode_response(doc, REQUEST)
    assert orjson.loads(GEMINI.encode_response(response, REQUEST)) == doc


def test_the_sdk_reads_re_encoded_streams() -> None:
    """Decoded and re-encoded, the stream is one the google-genai SDK parses into the same text and calls."""
    for name in ("stream_text.sse", "stream_thinking_function_calls.sse"):
        events = _decode(name)
        sse_request = Request(model="m", messages=(), stream=True, origin="gemini", native={"alt": "sse"})
        out = encode_all(GEMINI.stream_encoder(sse_request), events)
        chunks = [types.GenerateContentResponse.model_validate_json(line[6:]) for line in out.split(b"\n\n") if line]
        array = encode_all(GEMINI.stream_encoder(REQUEST), events)
        assert [c.model_dump() for c in chunks] == [
            types.GenerateContentResponse.model_validate(c).model_dump() for c in orjson.loads(array)
        ]
        parts = [p for c in chunks for p in _parts(c)]
        text = "".join(p.text or "" for p in parts if not p.thought)
        calls = [p.function_call.name for p in parts if p.function_call]
        if name == "stream_text.sse":
            assert text == "The capital of France is Paris. Ünïcödé ✓"
        else:
            assert calls == ["get_weather", "get_time"]
            signed = [p for p in parts if p.thought_signature]
            assert signed[0].function_call is not None and signed[0].function_call.name == "get_weather"
        assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def _parts(chunk: types.GenerateContentResponse) -> list[types.Part]:
    candidate = chunk.candidates[0] if chunk.candidates else None
    return list(candidate.content.parts or []) if candidate is not None and candidate.content else []


ERRORS = {
    "error_400_invalid_argument.json": ErrorKind.INVALID_REQUEST,
    "error_400_context_length.json": ErrorKind.CONTEXT_LENGTH,
    "error_401_unauthenticated.json": ErrorKind.AUTHENTICATION,
    "error_403_permission_denied.json": ErrorKind.PERMISSION,
    "error_404_not_found.json": ErrorKind.NOT_FOUND,
    "error_429_resource_exhausted.json": ErrorKind.RATE_LIMIT,
    "error_500_internal.json": ErrorKind.API_ERROR,
    "error_503_unavailable.json": ErrorKind.OVERLOADED,
    "error_504_deadline_exceeded.json": ErrorKind.TIMEOUT,
}


@pytest.mark.parametrize(("name", "kind"), ERRORS.items())
def test_errors(name: str, kind: ErrorKind) -> None:
    recorded = read_error(DIR, name)
    error = GEMINI.decode_error(recorded.status, recorded.body, recorded.headers)
    assert error.kind is kind and error.status == recorded.status
    assert error.message == orjson.loads(recorded.body)["error"]["message"]
    if recorded.status == 429:
        assert error.retry_after == "17"
    rendered = GEMINI.encode_error(error)
    body = orjson.loads(rendered.body)["error"]
    original = orjson.loads(recorded.body)["error"]
    assert (rendered.status, body["status"], body["code"]) == (recorded.status, original["status"], original["code"])
