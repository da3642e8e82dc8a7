"""Encoding canonical stream events as Chat chunks for the client, ending with ``data: [DONE]``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockKind,
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
    Request,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from llm_proxy.dialects.openai_chat.response import chat_id, encode_usage, finish_reason_json
from llm_proxy.dialects.openai_chat.thinking import carry_signature
from llm_proxy.dialects.openai_errors import error_object
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import encode_event

_SLOT = "\x00llm-proxy-slot\x00"


@dataclass
class _OpenBlock:
    kind: BlockKind
    tool_index: int = -1
    item_id: str | None = None
    data: str | None = None
    text: list[str] = field(default_factory=list)
    signature: str | None = None


class ChatStreamEncoder:
    """Canonical events in, Chat chunk bytes out; ``close()`` writes ``data: [DONE]``."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._include_usage = request.include_usage is True
        self._id = ""
        self._created = 0
        self._end = StreamEnd(terminator=b"data: [DONE]\n\n")
        """A finish chunk does not end a Chat stream: ``[DONE]`` at close does, or an error."""
        self._blocks: dict[int, _OpenBlock] = {}
        self._tool_count = 0
        self._content_chunk: tuple[bytes, bytes] = (b"", b"")

    def encode(self, event: StreamEvent) -> bytes:
        if self._end.ended:
            return b""
        if isinstance(event, StreamError):
            self._end.fail()
            return encode_event(orjson.dumps({"error": error_object(event.error)}))
        if isinstance(event, MessageStart):
            return self._start(event.id, event.created)
        head = b"" if self._end.started else self._start("", None)
        return head + self._body(event)

    def close(self) -> bytes:
        return self._end.close()

    def _start(self, message_id: str, created: int | None) -> bytes:
        if not self._end.start():
            return b""
        self._id = chat_id(message_id)
        self._created = created if created is not None else int(time.time())
        # Text deltas are most of a stream: render their chunk once around a slot for the text, so each
        # delta costs one string encoding instead of a whole chunk (the bytes are identical).
        prefix, _, suffix = self._chunk({"content": _SLOT}).partition(orjson.dumps(_SLOT))
        self._content_chunk = (prefix, suffix)
        return self._chunk({"role": "assistant", "content": ""})

    def _body(self, event: StreamEvent) -> bytes:
        if isinstance(event, BlockStart):
            return self._block_start(event)
        if isinstance(event, Finish):
            return self._finish(event)
        block = self._blocks.get(getattr(event, "index", -1))
        if block is None:
            return b""
        if isinstance(event, TextDelta):
            if block.kind == "text":
                prefix, suffix = self._content_chunk
                return prefix + orjson.dumps(event.text) + suffix
            return self._chunk({"refusal": event.text}) if block.kind == "refusal" else b""
        if isinstance(event, ToolArgsDelta):
            return self._chunk(
                {"tool_calls": [{"index": block.tool_index, "function": {"arguments": event.partial_json}}]}
            )
        if isinstance(event, ThinkingDelta):
            block.text.append(event.text)
            return self._chunk({"reasoning_content": event.text})
        if isinstance(event, SignatureDelta):
            block.signature = event.signature
            return b""
        if isinstance(event, BlockStop):
            del self._blocks[event.index]
            return self._block_stop(block)
        return b""

    def _block_start(self, event: BlockStart) -> bytes:
        block = _OpenBlock(kind=event.kind, item_id=event.id, data=event.data)
        self._blocks[event.index] = block
        if event.kind != "tool_call":
            return b""
        block.tool_index = self._tool_count
        self._tool_count += 1
        call = {
            "index": block.tool_index,
            "id": event.id,
            "type": "function",
            "function": {"name": event.name, "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _block_stop(self, block: _OpenBlock) -> bytes:
        """Thinking is carried whole at its end, once the signature is known."""
        if block.kind == "redacted_thinking" and block.data is not None:
            return self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.data}]})
        if block.kind == "reasoning":
            signature = carry_signature(block.item_id, block.signature)
        elif block.kind == "thinking" and block.signature is not None:
            signature = block.signature
        else:
            return b""
        complete = {"type": "thinking", "thinking": "".join(block.text), "signature": signature}
        return self._chunk({"thinking_blocks": [complete]})

    def _finish(self, event: Finish) -> bytes:
        out = self._chunk({}, finish_reason_json(event.stop_reason))
        if self._include_usage:
            usage_chunk = {**self._envelope(), "choices": [], "usage": encode_usage(event.usage)}
            out += encode_event(orjson.dumps(usage_chunk))
        return out

    def _envelope(self) -> dict[str, JSON]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, JSON], finish_reason: str | None = None) -> bytes:
        chunk = self._envelope()
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: null on every chunk but the usage chunk
        return encode_event(orjson.dumps(chunk))
