"""The stream translator, Playbook-style: upstream bytes in (split at every offset), client bytes out. No sockets."""

from __future__ import annotations

import re

import orjson
import pytest

from llm_proxy.canonical import Message, MessageStart, Request, StreamEvent, Text
from llm_proxy.dialects import get_dialect
from llm_proxy.modes.translator import StreamTranslator, translate_response
from llm_proxy.observe.redact import Redactor

SECRET = "sk-upstream-secret-42424242"

CLAUDE_STREAM = b"".join(
    f"event: {json_type}\ndata: {data}\n\n".encode()
    for json_type, data in [
        ("message_start", '{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
         '"model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,'
         '"usage":{"input_tokens":12,"output_tokens":1}}}'),
        ("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
        ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}'),
        ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}'),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        ("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
         '"usage":{"output_tokens":3}}'),
        ("message_stop", '{"type":"message_stop"}'),
    ]
)  # fmt: skip


def _request(stream: bool = True) -> Request:
    return Request(model="m", messages=(Message(role="user", content=(Text(text="hi"),)),), stream=stream)


def _translator(client: str, **kwargs: object) -> StreamTranslator:
    request = _request()
    return StreamTranslator(get_dialect("claude"), get_dialect(client), request, request, **kwargs)  # type: ignore[arg-type]


def _chat_chunks(data: bytes) -> list[object]:
    lines = [line[6:] for line in data.split(b"\n") if line.startswith(b"data: ")]
    return [line.decode() if line == b"[DONE]" else orjson.loads(line) for line in lines]


def test_claude_to_chat_whole_stream() -> None:
    translator = _translator("openai-chat")
    assert dict(translator.headers)["content-type"] == "text/event-stream"
    out = translator.feed(CLAUDE_STREAM) + translator.close()
    chunks = _chat_chunks(out)
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1] if isinstance(c, dict) and c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Hello"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if isinstance(c, dict) and c["choices"]]
    assert [f for f in finishes if f] == ["stop"]
    assert {c["id"] for c in chunks[:-1] if isinstance(c, dict)} == {"chatcmpl-msg_01"}


@pytest.mark.parametrize("client", ["openai-chat", "openai-responses", "claude", "bedrock"])
def test_every_split_gives_the_same_bytes(client: str) -> None:
    whole = _translator(client)
    expected = _untimed(whole.feed(CLAUDE_STREAM) + whole.close())
    for cut in range(1, len(CLAUDE_STREAM)):
        translator = _translator(client)
        out = translator.feed(CLAUDE_STREAM[:cut]) + translator.feed(CLAUDE_STREAM[cut:]) + translator.close()
        assert _untimed(out) == expected, cut


def _untimed(data: bytes) -> bytes:
    """Creation times come from the clock when the upstream gives none: the only bytes that may differ."""
    return re.sub(rb'"(created|created_at)":\d+', rb'"\1":0', data)


def test_observers_see_every_event_once_and_the_minted_id_replaces_the_upstreams() -> None:
    seen: list[StreamEvent] = []
    translator = _translator("openai-responses", message_id="resp_" + "a" * 50, observers=(seen.extend,))
    out = translator.feed(CLAUDE_STREAM) + translator.close()
    events = [orjson.loads(line[6:]) for line in out.split(b"\n") if line.startswith(b"data: ")]
    assert events[0]["type"] == "response.created" and events[0]["response"]["id"] == "resp_" + "a" * 50
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["id"] == "resp_" + "a" * 50
    assert [type(e).__name__ for e in seen] == [
        "MessageStart",
        "BlockStart",
        "TextDelta",
        "TextDelta",
        "BlockStop",
        "Finish",
    ]
    assert isinstance(seen[0], MessageStart) and seen[0].id == "resp_" + "a" * 50


def test_an_interrupted_stream_ends_with_the_clients_error_event_never_a_clean_end() -> None:
    translator = _translator("claude")
    out = translator.feed(CLAUDE_STREAM[:400]) + translator.interrupted("the upstream went away", timeout=False)
    assert b"event: message_stop" not in out
    assert out.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"the upstream went away"}}\n\n'
    )


def test_a_stream_cut_short_by_the_upstream_is_an_error_too() -> None:
    translator = _translator("openai-chat")
    out = translator.feed(CLAUDE_STREAM[:400]) + translator.close()
    chunks = _chat_chunks(out)
    assert any(isinstance(c, dict) and "error" in c for c in chunks)
    assert not any(isinstance(c, dict) and c.get("choices") and c["choices"][0].get("finish_reason") for c in chunks)


def test_in_stream_errors_are_scrubbed_of_configured_secrets() -> None:
    error = (
        b"event: error\ndata: "
        + orjson.dumps({"type": "error", "error": {"type": "authentication_error", "message": f"bad key {SECRET}"}})
        + b"\n\n"
    )
    translator = _translator("claude", redactor=Redactor([SECRET]))
    two_events = CLAUDE_STREAM[: CLAUDE_STREAM.index(b"\n\n", CLAUDE_STREAM.index(b"content_block_start")) + 2]
    out = translator.feed(two_events + error) + translator.close()
    assert SECRET.encode() not in out
    assert b'"message":"bad key [redacted]"' in out


def test_a_whole_answer_is_translated_and_stamped() -> None:
    body = {
        "id": "msg_9",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Done."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    request = _request(stream=False)
    out = translate_response(
        get_dialect("claude"), get_dialect("openai-responses"), body, request, request, message_id="resp_minted"
    )
    doc = orjson.loads(out.body)
    assert (doc["id"], doc["status"], doc["output"][0]["content"][0]["text"]) == ("resp_minted", "completed", "Done.")
    assert out.response.id == "resp_minted" and out.headers == [("content-type", "application/json")]
