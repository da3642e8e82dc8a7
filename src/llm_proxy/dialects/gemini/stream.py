"""Gemini streams: ``GeminiStreamDecoder`` (an upstream's chunks -> canonical events) and ``GeminiStreamEncoder``.

Each chunk is a whole ``GenerateContentResponse`` holding the next parts of the first candidate. Consecutive
text parts continue one text block, thought parts one thinking block; a function call arrives whole and is one
tool-call block. A Gemini stream has no terminal event: it is complete when a chunk gave a ``finishReason`` and
the body ended (SSE), or at the array's closing ``]``. A body that ends before any ``finishReason`` was cut
short and ends with an error, never as a complete answer.

The encoder writes SSE when the client asked ``alt=sse`` (``Request.native["alt"]``), else the JSON array.
Thought text streams as ``thought`` parts; the block's signature follows at its end (on its own thought part,
or on the next part when it belonged there); a tool call is written whole at its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockKind,
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
    Opaque,
    Part,
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
from llm_proxy.dialects.gemini.errors import decode_error_object, error_json
from llm_proxy.dialects.gemini.framing import ArraySplitter
from llm_proxy.dialects.gemini.parts import Ids, PartEncoder, decode_part, foreign_signature, gemini_signature
from llm_proxy.dialects.gemini.response import decode_stop, decode_usage, encode_usage, finish_reason, response_id
from llm_proxy.dialects.jsonread import Invalid, obj_or_empty, string_or, upstream_fault
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import SSEParser, encode_event

SSE_CONTENT_TYPE = "text/event-stream"
ARRAY_CONTENT_TYPE = "application/json"

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


class GeminiStreamDecoder:
    """Gemini chunks (either framing, told apart by the first byte) in, canonical events out."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._sse: SSEParser | None = None
        self._array: ArraySplitter | None = None
        self.end = StreamEnd()
        self._ids = Ids()
        self._next = 0
        self._open: tuple[int, BlockKind] | None = None
        self._finish: JSON = None
        self._calls = False
        self._usage = Usage()
        self.skip: Callable[[bytes], bool] | None = None
        """Chunks not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self.end.ended:
            return out
        if self._sse is None and self._array is None:
            head = data.lstrip()
            if not head:
                return out
            if head.startswith(b"["):
                self._array = ArraySplitter()
            else:
                self._sse = SSEParser()
        if self._array is not None:
            for element in self._array.feed(data):
                self._element(element, out)
                if self.end.ended:
                    return out
            if self._array.ended:
                self._close(out)
            return out
        assert self._sse is not None
        for event in self._sse.feed(data):
            self._element(event.data, out)
            if self.end.ended:
                break
        return out

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._sse is not None:
            for event in self._sse.close():
                self._element(event.data, out)
        if not self.end.ended and self._array is None:
            self._close(out)
        return out + self.end.cut_short()

    def _close(self, out: list[StreamEvent]) -> None:
        if self._finish is None:
            out.extend(self.end.cut_short())  # no finishReason: the stream was cut, not complete
            return
        self._close_block(out)
        out.append(Finish(stop_reason=decode_stop(self._finish, self._calls), usage=self._usage))
        self.end.finish()

    def _element(self, data: bytes, out: list[StreamEvent]) -> None:
        if self.skip is not None and self.skip(data):
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            out.extend(self.end.error(upstream_fault("the upstream sent a stream chunk that is not JSON")))
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            out.extend(self.end.error(decode_error_object(chunk)))
            return
        if self.end.start():
            model = chunk.get("modelVersion")
            self._ids.scope = string_or(chunk.get("responseId"))
            out.append(
                MessageStart(
                    id=response_id(chunk.get("responseId"), repr(chunk)[:200]),
                    model=model if isinstance(model, str) and model else self._request.model,
                )
            )
        if "usageMetadata" in chunk:
            self._usage = decode_usage(chunk["usageMetadata"])
        candidates = chunk.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(first, dict):
            if candidates is None and isinstance(chunk.get("promptFeedback"), dict):
                self._finish = "SAFETY"  # the prompt was blocked
            return
        parts = obj_or_empty(first.get("content")).get("parts")
        for i, raw in enumerate(parts if isinstance(parts, list) else ()):
            try:
                decoded = decode_part(raw, f"parts[{i}]", self._ids)
            except (Invalid, ValueError):
                out.extend(self.end.error(upstream_fault("the upstream sent a malformed part")))
                return
            for part in decoded:
                self._part(part, out)
        if isinstance(first.get("finishReason"), str):
            self._finish = first["finishReason"]

    def _part(self, part: Part, out: list[StreamEvent]) -> None:
        if isinstance(part, Text):
            if part.text:
                self._ensure("text", out)
                out.append(TextDelta(index=self._index(), text=part.text))
        elif isinstance(part, Reasoning):
            own = gemini_signature(part)
            if own is not None and own[1]:
                self._start_block(out, "thinking")  # the signature of the part that follows: a block of its own
            else:
                self._ensure("thinking", out)
            if part.text:
                out.append(ThinkingDelta(index=self._index(), text=part.text))
            if part.signature is not None:
                out.append(SignatureDelta(index=self._index(), signature=part.signature))
                self._close_block(out)
        elif isinstance(part, ToolCall):
            self._calls = True
            self._start_block(out, "tool_call", id=part.id, name=part.name)
            out.append(ToolArgsDelta(index=self._index(), partial_json=part.arguments))
            self._close_block(out)
        elif isinstance(part, Opaque):
            self._start_block(out, "opaque", raw=part.raw)
            self._close_block(out)

    def _index(self) -> int:
        assert self._open is not None
        return self._open[0]

    def _is_open(self, kind: BlockKind) -> bool:
        return self._open is not None and self._open[1] == kind

    def _ensure(self, kind: BlockKind, out: list[StreamEvent]) -> None:
        if not self._is_open(kind):
            self._start_block(out, kind)

    def _start_block(self, out: list[StreamEvent], kind: BlockKind, **fields: Any) -> None:
        self._close_block(out)
        out.append(BlockStart(index=self._next, kind=kind, **fields))
        self._open = (self._next, kind)
        self._next += 1

    def _close_block(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(index=self._open[0]))
            self._open = None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


@dataclass
class _Block:
    kind: BlockKind
    id: str | None = None
    name: str | None = None
    data: str | None = None
    raw: JSON = None
    text: list[str] = field(default_factory=list)
    signature: str | None = None


class GeminiStreamEncoder:
    """Canonical events in, Gemini chunks out (SSE or the JSON array)."""

    def __init__(self, request: Request) -> None:
        self._sse = request.native.get("alt") == "sse"
        self.content_type = SSE_CONTENT_TYPE if self._sse else ARRAY_CONTENT_TYPE
        self._model = request.model
        self._id = ""
        self.end = StreamEnd(terminator=b"" if self._sse else b"]")
        """SSE ends with the finishing chunk; the array with ``]`` at close, after which nothing may follow."""
        self._written = False
        self._blocks: dict[int, _Block] = {}
        self._parts = PartEncoder(same=False, toward_client=True)

    def encode(self, event: StreamEvent) -> bytes:
        if self.end.ended:
            return b""
        if isinstance(event, StreamError):
            self.end.fail()
            return self._frame(error_json(event.error))
        if isinstance(event, MessageStart):
            if self.end.start():
                self._id, self._model = event.id, event.model or self._model
            return b""
        self.end.start()
        if isinstance(event, BlockStart):
            self._blocks[event.index] = _Block(event.kind, event.id, event.name, event.data, event.raw)
            return b""
        if isinstance(event, Finish):
            out = self._finish(event.stop_reason, event.usage)
            if self._sse:
                self.end.finish()
            return out
        block = self._blocks.get(getattr(event, "index", -1))
        if block is None:
            return b""
        if isinstance(event, TextDelta):
            return self._chunk([{"text": event.text}]) if event.text else b""
        if isinstance(event, ThinkingDelta):
            block.text.append(event.text)
            return self._chunk([{"text": event.text, "thought": True}]) if event.text else b""
        if isinstance(event, ToolArgsDelta):
            block.text.append(event.partial_json)
        elif isinstance(event, SignatureDelta):
            block.signature = event.signature
        elif isinstance(event, BlockStop):
            del self._blocks[event.index]
            return self._block_end(block)
        return b""

    def close(self) -> bytes:
        tail = self.end.close()
        return b"[" + tail if tail and not self._written else tail

    def _block_end(self, block: _Block) -> bytes:
        if block.kind == "tool_call":
            call = ToolCall(id=block.id or "", name=block.name or "", arguments="".join(block.text))
            return self._chunk([self._parts.encode(call)])
        if block.kind == "opaque":
            part = self._parts.encode(Opaque(dialects=frozenset({"gemini"}), raw=block.raw))
            return self._chunk([part]) if part is not None else b""
        reasoning = self._reasoning(block)
        if reasoning is None:
            return b""
        own = gemini_signature(reasoning)
        if own is not None:
            signature, attached = own
            if attached and not reasoning.text:
                self._parts.pending = signature
                return b""
            return self._chunk([{"text": "", "thought": True, "thoughtSignature": signature}])
        if reasoning.signature is None and reasoning.redacted is None and reasoning.provider == "anthropic":
            return b""  # unsigned thinking: its text went out already
        return self._chunk([{"text": "", "thought": True, "thoughtSignature": foreign_signature(reasoning)}])

    @staticmethod
    def _reasoning(block: _Block) -> Reasoning | None:
        text = "".join(block.text)
        if block.kind == "thinking":
            return Reasoning(provider="anthropic", text=text, signature=block.signature)
        if block.kind == "redacted_thinking":
            return Reasoning(provider="anthropic", redacted=block.data or "")
        if block.kind == "reasoning":
            summary = (text,) if text else ()
            return Reasoning(provider="openai", id=block.id, summary=summary, signature=block.signature)
        return None

    def _finish(self, stop: StopReason | None, usage: Usage) -> bytes:
        last: dict[str, JSON] = {"text": ""}
        if self._parts.pending is not None:
            last["thoughtSignature"] = self._parts.pending
            self._parts.pending = None
        candidate: dict[str, JSON] = {
            "content": {"parts": [last], "role": "model"},
            "finishReason": finish_reason(stop),
            "index": 0,
        }
        return self._frame(self._envelope(candidate, encode_usage(usage)))

    def _chunk(self, parts: list[dict[str, JSON] | None]) -> bytes:
        wire = [p for p in parts if p is not None]
        if not wire:
            return b""
        if self._parts.pending is not None and "thought" not in wire[0]:
            wire[0]["thoughtSignature"] = self._parts.pending
            self._parts.pending = None
        candidate: dict[str, JSON] = {"content": {"parts": wire, "role": "model"}, "index": 0}
        return self._frame(self._envelope(candidate, None))

    def _envelope(self, candidate: dict[str, JSON], usage: JSON) -> dict[str, JSON]:
        doc: dict[str, JSON] = {"candidates": [candidate]}
        if usage is not None:
            doc["usageMetadata"] = usage
        doc["modelVersion"] = self._model
        doc["responseId"] = self._id
        return doc

    def _frame(self, doc: dict[str, JSON]) -> bytes:
        data = orjson.dumps(doc)
        if self._sse:
            return encode_event(data)
        head = b",\r\n" if self._written else b"["
        self._written = True
        return head + data
