"""Encoding canonical stream events as the Responses event stream for the client.

Events follow the order of the Responses API: ``event:`` lines, increasing ``sequence_number``, one
output item at a time, and ``response.output_item.done`` carrying the complete item that Codex relies on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
    ProxyError,
    Reasoning,
    Request,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.openai_errors import response_failure
from llm_proxy.dialects.openai_responses.output import (
    call_out,
    custom_tool_input,
    encode_usage,
    is_hosted_item,
    message_out,
    reasoning_out,
    response_id,
    response_object,
    status_for,
    text_out,
    thinking_carry,
)
from llm_proxy.dialects.openai_responses.wire import NAME, custom_names
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import encode_event


@dataclass(slots=True)
class _DownBlock:
    kind: str
    output_index: int
    item_id: str
    content_index: int = 0
    chunks: list[str] = field(default_factory=list)
    """Text of the content part, the summary part being written, or the call's arguments."""
    thinking: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    part_open: bool = False
    signature: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    custom: bool = False
    unwrap: bool = False
    """A function-style call of a client-declared custom tool: send ``custom_tool_input`` of the JSON at the end."""
    data: str | None = None
    raw: JSON = None


@dataclass(slots=True)
class _OpenMessage:
    output_index: int
    item_id: str
    parts: list[JSON] = field(default_factory=list)


_REASONING_KINDS = ("reasoning", "thinking", "redacted_thinking")


class ResponsesStreamEncoder:
    """Canonical events -> the Responses event stream (``event:`` + ``data:``, increasing ``sequence_number``)."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._request = request
        self._custom = custom_names(request)
        self._seq = 0
        self._resp_id = "resp_synthesized"
        self._created = 0
        self._end = StreamEnd()
        self._start_usage = Usage()
        self._items: list[JSON] = []
        """Output items by output index; None until the item is done."""
        self._blocks: dict[int, _DownBlock] = {}
        self._message: _OpenMessage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if self._end.ended:
            return b""
        out: list[bytes] = []
        if isinstance(event, MessageStart):
            self._start(out, event)
            return b"".join(out)
        if not self._end.started:
            self._start(out, None)
        if isinstance(event, StreamError):
            self._fail(out, event.error)
        elif isinstance(event, BlockStart):
            self._block_start(out, event)
        elif isinstance(event, BlockStop):
            self._block_stop(out, event.index)
        elif isinstance(event, Finish):
            self._finish(out, event)
        else:
            self._delta(out, event)
        return b"".join(out)

    def close(self) -> bytes:
        return self._end.close()  # the stream ends with response.completed (or .incomplete, .failed)

    # -- writing ------------------------------------------------------------------------------

    def _emit(self, out: list[bytes], kind: str, fields: dict[str, JSON]) -> None:
        payload = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        out.append(encode_event(orjson.dumps(payload), kind))

    def _response(self, status: str, **fields: JSON) -> dict[str, JSON]:
        output = [item for item in self._items if item is not None]
        return response_object(self._request, self._resp_id, self._created, status, output, **fields)

    def _start(self, out: list[bytes], event: MessageStart | None) -> None:
        if not self._end.start():
            return
        if event is not None:
            self._resp_id = response_id(event.id)
            self._start_usage = event.usage
        created = event.created if event is not None else None
        self._created = created if created is not None else int(time.time())
        self._emit(out, "response.created", {"response": self._response("in_progress")})
        self._emit(out, "response.in_progress", {"response": self._response("in_progress")})

    def _new_item(self) -> int:
        self._items.append(None)
        return len(self._items) - 1

    # -- blocks -------------------------------------------------------------------------------

    def _block_start(self, out: list[bytes], event: BlockStart) -> None:
        if event.kind in ("text", "refusal"):
            self._content_start(out, event)
            return
        if event.kind == "opaque" and not is_hosted_item(event.raw):
            drop(NAME, "opaque stream block of another vendor")
            return
        self._close_message(out)
        oi = self._new_item()
        core = self._resp_id.removeprefix("resp_")
        block: _DownBlock
        if event.kind in _REASONING_KINDS:
            item_id = event.id if event.kind == "reasoning" and event.id else f"rs_{core}_{oi}"
            block = _DownBlock(kind=event.kind, output_index=oi, item_id=item_id, data=event.data)
            item = reasoning_out(item_id, [], None)
        elif event.kind == "tool_call":
            block = self._call_block(event, oi, core)
            item = call_out(block.item_id, block.call_id, block.name, "", block.custom, "in_progress")
        else:
            block = _DownBlock(kind="opaque", output_index=oi, item_id="", raw=event.raw)
            item = event.raw
        self._blocks[event.index] = block
        self._emit(out, "response.output_item.added", {"output_index": oi, "item": item})

    def _call_block(self, event: BlockStart, oi: int, core: str) -> _DownBlock:
        call_id = event.id or f"call_{core}_{oi}"
        name = event.name or ""
        custom = event.tool_kind == "custom" or name in self._custom
        return _DownBlock(
            kind="call",
            output_index=oi,
            item_id=f"fc_{call_id}",
            call_id=call_id,
            name=name,
            custom=custom,
            unwrap=custom and event.tool_kind != "custom",
        )

    def _content_start(self, out: list[bytes], event: BlockStart) -> None:
        message = self._message
        if message is None:
            oi = self._new_item()
            message = _OpenMessage(output_index=oi, item_id=f"msg_{self._resp_id.removeprefix('resp_')}_{oi}")
            self._message = message
            item = message_out(message.item_id, [], "in_progress")
            self._emit(out, "response.output_item.added", {"output_index": oi, "item": item})
        ci = len(message.parts)
        message.parts.append(None)
        part = {"type": "refusal", "refusal": ""} if event.kind == "refusal" else text_out("")
        block = _DownBlock(
            kind=event.kind, output_index=message.output_index, item_id=message.item_id, content_index=ci
        )
        self._blocks[event.index] = block
        self._emit(out, "response.content_part.added", {**self._where(block), "part": part})

    def _where(self, block: _DownBlock, content: bool = True) -> dict[str, JSON]:
        where: dict[str, JSON] = {"item_id": block.item_id, "output_index": block.output_index}
        if content:
            where["content_index"] = block.content_index
        return where

    def _close_message(self, out: list[bytes]) -> None:
        message = self._message
        if message is None:
            return
        self._message = None
        item = message_out(message.item_id, [p for p in message.parts if p is not None], "completed")
        self._items[message.output_index] = item
        self._emit(out, "response.output_item.done", {"output_index": message.output_index, "item": item})

    def _delta(self, out: list[bytes], event: StreamEvent) -> None:
        block = self._blocks.get(getattr(event, "index", -1))
        if block is None:
            return
        if isinstance(event, TextDelta) and block.kind in ("text", "refusal"):
            block.chunks.append(event.text)
            if block.kind == "refusal":
                self._emit(out, "response.refusal.delta", {**self._where(block), "delta": event.text})
            else:
                self._emit(
                    out, "response.output_text.delta", {**self._where(block), "delta": event.text, "logprobs": []}
                )
        elif isinstance(event, ThinkingDelta) and block.kind in _REASONING_KINDS:
            self._thinking_delta(out, block, event.text)
        elif isinstance(event, SignatureDelta):
            block.signature.append(event.signature)
        elif isinstance(event, ToolArgsDelta) and block.kind == "call":
            block.chunks.append(event.partial_json)
            if block.unwrap or not event.partial_json:
                return  # the custom input is only known once the whole JSON has arrived
            kind = "response.custom_tool_call_input.delta" if block.custom else "response.function_call_arguments.delta"
            self._emit(out, kind, {**self._where(block, False), "delta": event.partial_json})

    def _thinking_delta(self, out: list[bytes], block: _DownBlock, text: str) -> None:
        if block.kind == "reasoning" and text == "\n\n" and block.part_open:
            self._close_summary(out, block)  # the decoder's separator between two summary parts
            return
        if not text:
            return
        block.thinking.append(text)
        if not block.part_open:
            block.part_open = True
            part = {"type": "summary_text", "text": ""}
            fields = {**self._where(block, False), "summary_index": len(block.summaries), "part": part}
            self._emit(out, "response.reasoning_summary_part.added", fields)
        block.chunks.append(text)
        fields = {**self._where(block, False), "summary_index": len(block.summaries), "delta": text}
        self._emit(out, "response.reasoning_summary_text.delta", fields)

    def _close_summary(self, out: list[bytes], block: _DownBlock) -> None:
        text = "".join(block.chunks)
        where = {**self._where(block, False), "summary_index": len(block.summaries)}
        self._emit(out, "response.reasoning_summary_text.done", {**where, "text": text})
        self._emit(
            out, "response.reasoning_summary_part.done", {**where, "part": {"type": "summary_text", "text": text}}
        )
        block.summaries.append(text)
        block.chunks = []
        block.part_open = False

    def _block_stop(self, out: list[bytes], index: int) -> None:
        block = self._blocks.pop(index, None)
        if block is None:
            return
        if block.kind in ("text", "refusal"):
            self._content_stop(out, block)
            return
        if block.kind in _REASONING_KINDS:
            item = self._reasoning_stop(out, block)
        elif block.kind == "call":
            item = self._call_stop(out, block)
        else:
            item = block.raw
        self._items[block.output_index] = item
        self._emit(out, "response.output_item.done", {"output_index": block.output_index, "item": item})

    def _content_stop(self, out: list[bytes], block: _DownBlock) -> None:
        text = "".join(block.chunks)
        part: JSON
        if block.kind == "refusal":
            part = {"type": "refusal", "refusal": text}
            self._emit(out, "response.refusal.done", {**self._where(block), "refusal": text})
        else:
            part = text_out(text)
            self._emit(out, "response.output_text.done", {**self._where(block), "text": text, "logprobs": []})
        self._emit(out, "response.content_part.done", {**self._where(block), "part": part})
        if self._message is not None and self._message.item_id == block.item_id:
            self._message.parts[block.content_index] = part

    def _reasoning_stop(self, out: list[bytes], block: _DownBlock) -> JSON:
        if block.part_open:
            self._close_summary(out, block)
        signature = "".join(block.signature) or None
        encrypted: str | None
        if block.kind == "thinking":
            encrypted = thinking_carry(
                Reasoning(provider="anthropic", text="".join(block.thinking), signature=signature)
            )
        elif block.kind == "redacted_thinking":
            encrypted = thinking_carry(Reasoning(provider="anthropic", redacted=block.data or ""))
        else:
            encrypted = signature  # a Responses upstream's own encrypted_content
        return reasoning_out(block.item_id, block.summaries, encrypted)

    def _call_stop(self, out: list[bytes], block: _DownBlock) -> JSON:
        value = "".join(block.chunks)
        if block.unwrap:
            value = custom_tool_input(value)
            if value:
                self._emit(out, "response.custom_tool_call_input.delta", {**self._where(block, False), "delta": value})
        if block.custom:
            self._emit(out, "response.custom_tool_call_input.done", {**self._where(block, False), "input": value})
        else:
            fields = {**self._where(block, False), "name": block.name, "arguments": value}
            self._emit(out, "response.function_call_arguments.done", fields)
        return call_out(block.item_id, block.call_id, block.name, value, block.custom, "completed")

    # -- the end ------------------------------------------------------------------------------

    def _finish(self, out: list[bytes], event: Finish) -> None:
        for index in sorted(self._blocks):
            self._block_stop(out, index)  # tolerate a block the upstream never stopped
        self._close_message(out)
        usage = _merge_usage(self._start_usage, event.usage)
        status, details = status_for(event.stop_reason)
        response = self._response(status, usage=encode_usage(usage), incomplete_details=details)
        self._emit(out, f"response.{status}", {"response": response})
        self._end.finish()

    def _fail(self, out: list[bytes], error: ProxyError) -> None:
        response = self._response("failed", error=response_failure(error))
        self._emit(out, "response.failed", {"response": response})
        self._end.fail()


def _merge_usage(start: Usage, final: Usage) -> Usage:
    """Final usage, with counts only the stream's start reported (e.g. input tokens) filled in."""
    return Usage(
        input_tokens=final.input_tokens or start.input_tokens,
        output_tokens=final.output_tokens or start.output_tokens,
        cache_read_tokens=final.cache_read_tokens or start.cache_read_tokens,
        cache_write_tokens=final.cache_write_tokens or start.cache_write_tokens,
        reasoning_tokens=final.reasoning_tokens or start.reasoning_tokens,
    )
