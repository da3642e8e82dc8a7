"""Chat streams: ``ChatStreamDecoder`` (an upstream's ``data:`` chunks -> canonical events) and
``ChatStreamEncoder`` (canonical events -> chunks for the client, ending with ``data: [DONE]``).

Decoding: deltas of one field open a canonical block (thinking, text, refusal, one per tool call) that stays
open until a delta of another field arrives; the stream ends at ``data: [DONE]`` (or, leniently, at the end
of the bytes after a ``finish_reason``). Encoding carries thinking whole in ``thinking_blocks`` at its end,
once the signature is known.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockKind,
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    MessageStart,
    ProxyError,
    Request,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from llm_proxy.dialects.jsonread import upstream_fault
from llm_proxy.dialects.openai_chat.response import (
    chat_id,
    decode_stop_reason,
    decode_usage,
    encode_usage,
    finish_reason_json,
)
from llm_proxy.dialects.openai_chat.thinking import carry_signature
from llm_proxy.dialects.openai_chat.wire import log
from llm_proxy.dialects.openai_errors import CHAT_RULES, error_object
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import SSEParser, encode_event

# ---------------------------------------------------------------------------------------------
# Stream decoding: Chat chunks -> canonical events
# ---------------------------------------------------------------------------------------------


class ChatStreamDecoder:
    """Chat ``data:`` chunks in, a well-formed canonical event sequence out (see the conventions)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._sse = SSEParser()
        self._end = StreamEnd()
        self._message_id = ""
        self._next_index = 0
        self._open: tuple[int, BlockKind] | None = None
        self._tools: dict[int, int] = {}
        """Chat tool-call index -> canonical block index."""
        self._stop: StopReason | None = None
        self._saw_finish = False
        self._usage = Usage()
        self.skip: Callable[[bytes], bool] | None = None
        """Event data not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in self._sse.feed(data):
            if self._end.ended:
                break
            if self.skip is not None and self.skip(event.data):
                continue
            self._event(event.data, out)
        return out

    def close(self) -> list[StreamEvent]:
        self._sse.close()
        if self._saw_finish and not self._end.ended:  # lenient: some servers end without [DONE]
            out: list[StreamEvent] = []
            self._finish(out)
            return out
        return self._end.cut_short()

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        if not data.startswith(b"{") and data.strip() == b"[DONE]":
            self._finish(out)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            out.extend(self._end.error(upstream_fault("upstream sent a chunk that is not JSON")))
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            out.extend(self._end.error(_stream_error(chunk["error"])))
            return
        if not self._end.started:
            self._start(out, chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = decode_usage(usage)
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:  # the first choice's delta and finish
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._delta(delta, out)
                finish = choice.get("finish_reason")
                if isinstance(finish, str):
                    self._stop, self._saw_finish = decode_stop_reason(finish), True

    def _start(self, out: list[StreamEvent], chunk: dict[str, JSON]) -> None:
        if not self._end.start():
            return
        chunk_id, model, created = chunk.get("id"), chunk.get("model"), chunk.get("created")
        self._message_id = chunk_id if isinstance(chunk_id, str) and chunk_id else "chatcmpl-" + uuid.uuid4().hex
        out.append(
            MessageStart(
                id=self._message_id,
                model=model if isinstance(model, str) and model else self._request.model,
                created=created if isinstance(created, int) and not isinstance(created, bool) else None,
            )
        )

    def _delta(self, delta: dict[str, JSON], out: list[StreamEvent]) -> None:
        if len(delta) == 1:  # most chunks carry just text
            text = delta.get("content")
            if isinstance(text, str):
                if text:
                    opened = self._open
                    if opened is None or opened[1] != "text":
                        self._open_block(out, "text")
                        opened = self._open
                    out.append(TextDelta(index=opened[0] if opened else 0, text=text))
                return
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")  # vLLM/OpenRouter say "reasoning"
        if isinstance(reasoning, str) and reasoning:
            self._ensure_open("thinking", out)
            out.append(ThinkingDelta(index=self._index(), text=reasoning))
        blocks = delta.get("thinking_blocks")
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict):
                self._thinking_block(block, bool(reasoning), out)
        text_kinds: tuple[tuple[str, BlockKind], ...] = (("content", "text"), ("refusal", "refusal"))
        for key, kind in text_kinds:
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._ensure_open(kind, out)
                out.append(TextDelta(index=self._index(), text=text))
        calls = delta.get("tool_calls")
        for fragment in calls if isinstance(calls, list) else ():
            if isinstance(fragment, dict):
                self._tool_fragment(fragment, out)

    def _thinking_block(self, block: dict[str, JSON], streamed: bool, out: list[StreamEvent]) -> None:
        """A ``thinking_blocks`` entry: the signature of the open thinking block, or a whole block."""
        if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            self._open_block(out, "redacted_thinking", data=block["data"])
            self._close_open(out)
            return
        if block.get("type") != "thinking":
            return
        text, signature = block.get("thinking"), block.get("signature")
        if not self._is_open("thinking"):
            self._ensure_open("thinking", out)
            if isinstance(text, str) and text and not streamed:
                out.append(ThinkingDelta(index=self._index(), text=text))
        if isinstance(signature, str) and signature:
            out.append(SignatureDelta(index=self._index(), signature=signature))
            self._close_open(out)

    def _tool_fragment(self, fragment: dict[str, JSON], out: list[StreamEvent]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):  # some servers omit it: a fragment with an id starts a new call
            index = len(self._tools) if fragment.get("id") or not self._tools else max(self._tools)
        fn = fragment.get("function")
        fn = fn if isinstance(fn, dict) else {}
        if index not in self._tools:
            call_id, name = fragment.get("id"), fn.get("name")
            self._open_block(
                out,
                "tool_call",
                id=call_id if isinstance(call_id, str) and call_id else f"call_{self._message_id}_{index}",
                name=name if isinstance(name, str) else "",
            )
            self._tools[index] = self._next_index - 1
        elif self._open is None or self._open[0] != self._tools[index]:
            # interleaved fragments of an earlier call: canonical blocks cannot reopen
            log.debug("ignored a fragment of closed tool call %s", index)
            return
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolArgsDelta(index=self._tools[index], partial_json=arguments))

    # -- block bookkeeping --------------------------------------------------------------------
    def _index(self) -> int:
        assert self._open is not None
        return self._open[0]

    def _is_open(self, kind: BlockKind) -> bool:
        return self._open is not None and self._open[1] == kind

    def _ensure_open(self, kind: BlockKind, out: list[StreamEvent]) -> None:
        if not self._is_open(kind):
            self._open_block(out, kind)

    def _open_block(self, out: list[StreamEvent], kind: BlockKind, **fields: Any) -> None:
        self._close_open(out)
        out.append(BlockStart(index=self._next_index, kind=kind, **fields))
        self._open = (self._next_index, kind)
        self._next_index += 1

    def _close_open(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(index=self._open[0]))
            self._open = None

    def _finish(self, out: list[StreamEvent]) -> None:
        self._start(out, {})
        self._close_open(out)
        out.append(Finish(stop_reason=self._stop, usage=self._usage))
        self._end.finish()


def _stream_error(raw: JSON) -> ProxyError:
    if isinstance(raw, dict):
        return CHAT_RULES.from_object(raw, None, None)
    return ProxyError(status=500, kind=ErrorKind.API_ERROR, message=str(raw))


# ---------------------------------------------------------------------------------------------
# Stream encoding: canonical events -> Chat chunks
# ---------------------------------------------------------------------------------------------


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
        if type(event) is TextDelta and self._end.open:
            # Text deltas are most of a stream: ``_body``'s bytes for them, without its dispatch.
            block = self._blocks.get(event.index)
            if block is not None and block.kind == "text":
                prefix, suffix = self._content_chunk
                return prefix + orjson.dumps(event.text) + suffix
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
