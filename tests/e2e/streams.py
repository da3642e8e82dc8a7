"""Fixed, realistic upstream replies for the end-to-end suite, one builder per dialect and kind of turn.

Each builder returns a ``ScriptedReply``-shaped dict for ``upstream.py``: the SSE stream a real vendor
sends for a text answer or a tool call (ids in the vendor's style, tool arguments split into several
fragments mid-token, usage where the vendor puts it), one event per chunk. The tests know these bytes
exactly, so they can assert what the client must have received and what must come back on the next turn.
"""

from __future__ import annotations

from typing import Any

import orjson

Reply = dict[str, Any]

MODEL = "upstream-model"
CREATED = 1_767_225_600


def sse_reply(events: list[bytes]) -> Reply:
    return {"status": 200, "content_type": "text/event-stream", "chunks": [e.decode() for e in events]}


def _split(text: str, parts: int) -> list[str]:
    """``text`` cut into ``parts`` pieces of near-equal length (tool arguments arrive cut mid-token)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- openai-chat ---------------------------------------------------------------------------------


def _chat_chunk(chunk_id: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_e2e",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def _chat_usage(chunk_id: str, prompt: int, completion: int) -> bytes:
    doc = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_e2e",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def chat_tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> Reply:
    """A chat stream that calls one tool: role chunk, id/name chunk, argument fragments, finish, usage, [DONE]."""
    chunk_id = "chatcmpl-e2e" + call_id[-6:]
    args = orjson.dumps(arguments).decode()
    events = [_chat_chunk(chunk_id, {"role": "assistant", "content": None, "refusal": None})]
    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    events.append(_chat_chunk(chunk_id, {"tool_calls": [first]}))
    for piece in _split(args, 4):
        events.append(_chat_chunk(chunk_id, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(_chat_chunk(chunk_id, {}, "tool_calls"))
    events.append(_chat_usage(chunk_id, 1200, 25))
    events.append(b"data: [DONE]\n\n")
    return sse_reply(events)


def chat_text(text: str) -> Reply:
    """A chat stream answering ``text`` in a few content deltas."""
    chunk_id = "chatcmpl-e2etext"
    events = [_chat_chunk(chunk_id, {"role": "assistant", "content": "", "refusal": None})]
    events += [_chat_chunk(chunk_id, {"content": piece}) for piece in _split(text, 3)]
    events.append(_chat_chunk(chunk_id, {}, "stop"))
    events.append(_chat_usage(chunk_id, 1300, 12))
    events.append(b"data: [DONE]\n\n")
    return sse_reply(events)


def chat_cut(text: str) -> Reply:
    """A chat stream that stops mid-answer: no finish_reason, no usage, no ``[DONE]`` (the connection just ends)."""
    chunk_id = "chatcmpl-e2ecut"
    events = [_chat_chunk(chunk_id, {"role": "assistant", "content": "", "refusal": None})]
    events += [_chat_chunk(chunk_id, {"content": piece}) for piece in _split(text, 2)]
    return sse_reply(events)


def chat_completion_json(text: str) -> Reply:
    """A non-streamed chat completion answering ``text``."""
    doc = {
        "id": "chatcmpl-e2ejson",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_e2e",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 12, "total_tokens": 1212},
    }
    return {"status": 200, "content_type": "application/json", "chunks": [orjson.dumps(doc).decode()]}


# --- claude --------------------------------------------------------------------------------------


def _claude_event(doc: dict[str, Any]) -> bytes:
    return b"event: " + str(doc["type"]).encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


def _claude_start(message_id: str) -> bytes:
    return _claude_event(
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 1200,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        }
    )


def _claude_end(stop_reason: str, output_tokens: int) -> list[bytes]:
    return [
        _claude_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            }
        ),
        _claude_event({"type": "message_stop"}),
    ]


def _claude_text_block(index: int, text: str) -> list[bytes]:
    events = [
        _claude_event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
    ]
    for piece in _split(text, 3):
        delta = {"type": "text_delta", "text": piece}
        events.append(_claude_event({"type": "content_block_delta", "index": index, "delta": delta}))
    events.append(_claude_event({"type": "content_block_stop", "index": index}))
    return events


def _claude_thinking_block(index: int, thinking: str, signature: str) -> list[bytes]:
    start = {"type": "thinking", "thinking": "", "signature": ""}
    events = [_claude_event({"type": "content_block_start", "index": index, "content_block": start})]
    for piece in _split(thinking, 3):
        delta = {"type": "thinking_delta", "thinking": piece}
        events.append(_claude_event({"type": "content_block_delta", "index": index, "delta": delta}))
    delta = {"type": "signature_delta", "signature": signature}
    events.append(_claude_event({"type": "content_block_delta", "index": index, "delta": delta}))
    events.append(_claude_event({"type": "content_block_stop", "index": index}))
    return events


def claude_tool_use(
    tool_id: str, name: str, arguments: dict[str, Any], preamble: str, thinking: tuple[str, str] | None = None
) -> Reply:
    """A Messages stream: optionally a thinking block (text, signature), a short text block, then a tool_use
    block whose input arrives as JSON fragments."""
    events = [_claude_start("msg_e2e" + tool_id[-6:]), _claude_event({"type": "ping"})]
    index = 0
    if thinking is not None:
        events += _claude_thinking_block(index, *thinking)
        index += 1
    events += _claude_text_block(index, preamble)
    index += 1
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    events.append(_claude_event({"type": "content_block_start", "index": index, "content_block": block}))
    for piece in _split(orjson.dumps(arguments).decode(), 4):
        delta = {"type": "input_json_delta", "partial_json": piece}
        events.append(_claude_event({"type": "content_block_delta", "index": index, "delta": delta}))
    events.append(_claude_event({"type": "content_block_stop", "index": index}))
    events += _claude_end("tool_use", 40)
    return sse_reply(events)


def claude_text(text: str) -> Reply:
    """A Messages stream answering ``text``."""
    events = [_claude_start("msg_e2etext"), *_claude_text_block(0, text), *_claude_end("end_turn", 12)]
    return sse_reply(events)


# --- openai-responses ----------------------------------------------------------------------------


class _ResponsesStream:
    """Builds one Responses stream with increasing ``sequence_number`` and a final ``response.completed``."""

    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.events: list[bytes] = []
        self.output: list[dict[str, Any]] = []
        self.sequence = 0

    def emit(self, doc: dict[str, Any]) -> None:
        doc = {**doc, "sequence_number": self.sequence}
        self.sequence += 1
        self.events.append(b"event: " + str(doc["type"]).encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n")

    def response(self, status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": MODEL,
            "output": list(self.output),
            "parallel_tool_calls": True,
            "store": False,
            "usage": usage,
        }

    def begin(self) -> None:
        self.emit({"type": "response.created", "response": self.response("in_progress", None)})
        self.emit({"type": "response.in_progress", "response": self.response("in_progress", None)})

    def reasoning(self, item_id: str, summary: str, encrypted: str) -> None:
        index = len(self.output)
        added = {"id": item_id, "type": "reasoning", "summary": []}
        self.emit({"type": "response.output_item.added", "output_index": index, "item": added})
        part = {"type": "summary_text", "text": ""}
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        self.emit({"type": "response.reasoning_summary_part.added", **where, "part": part})
        for piece in _split(summary, 3):
            self.emit({"type": "response.reasoning_summary_text.delta", **where, "delta": piece})
        self.emit({"type": "response.reasoning_summary_text.done", **where, "text": summary})
        self.emit({"type": "response.reasoning_summary_part.done", **where, "part": {**part, "text": summary}})
        item = {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": summary}],
            "encrypted_content": encrypted,
        }
        self.output.append(item)
        self.emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def function_call(self, item_id: str, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        index = len(self.output)
        args = orjson.dumps(arguments).decode()
        base = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name}
        added = {**base, "arguments": "", "status": "in_progress"}
        self.emit({"type": "response.output_item.added", "output_index": index, "item": added})
        for piece in _split(args, 4):
            self.emit(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item_id,
                    "output_index": index,
                    "delta": piece,
                }
            )
        done = {"type": "response.function_call_arguments.done", "item_id": item_id, "output_index": index}
        self.emit({**done, "name": name, "arguments": args})
        item = {**base, "arguments": args, "status": "completed"}
        self.output.append(item)
        self.emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def message(self, item_id: str, text: str) -> None:
        index = len(self.output)
        base = {"id": item_id, "type": "message", "role": "assistant"}
        self.emit(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**base, "status": "in_progress", "content": []},
            }
        )
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self.emit({"type": "response.content_part.added", **where, "part": empty})
        for piece in _split(text, 3):
            self.emit({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []})
        self.emit({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        part = {**empty, "text": text}
        self.emit({"type": "response.content_part.done", **where, "part": part})
        item = {**base, "status": "completed", "content": [part]}
        self.output.append(item)
        self.emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def complete(self, output_tokens: int, reasoning_tokens: int) -> Reply:
        usage = {
            "input_tokens": 1200,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": 1200 + output_tokens,
        }
        self.emit({"type": "response.completed", "response": self.response("completed", usage)})
        return sse_reply(self.events)


def responses_reasoning_tool_call(
    reasoning_id: str, encrypted: str, call_id: str, name: str, arguments: dict[str, Any]
) -> Reply:
    """A Responses stream: a reasoning item (summary + ``encrypted_content``), then a function call."""
    stream = _ResponsesStream("resp_e2e" + call_id[-6:])
    stream.begin()
    stream.reasoning(reasoning_id, "The user wants the marker printed; run echo.", encrypted)
    stream.function_call("fc_e2e" + call_id[-6:], call_id, name, arguments)
    return stream.complete(output_tokens=60, reasoning_tokens=30)


def responses_text(text: str) -> Reply:
    """A Responses stream answering ``text`` in one message item."""
    stream = _ResponsesStream("resp_e2etext")
    stream.begin()
    stream.message("msg_e2etext", text)
    return stream.complete(output_tokens=12, reasoning_tokens=0)
