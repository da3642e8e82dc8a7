"""Messages streams: ``ClaudeStreamDecoder`` (SSE or event objects -> canonical events) and
``ClaudeStreamEncoder`` (canonical events -> event objects or SSE).

Both are sans-IO: feed bytes or events, get events or bytes back. Each side numbers blocks consecutively
whatever it was fed; the decoder holds freeform tool input and opaque server-tool blocks until their block
stops. Bedrock reuses ``feed_event`` and ``encode_objects`` inside its own event-stream framing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
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
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.claude.blocks import reasoning_signature
from llm_proxy.dialects.claude.errors import decode_error_event, error_json
from llm_proxy.dialects.claude.response import (
    custom_tool_names,
    decode_stop_reason,
    merge_usage,
    stop_reason_json,
    unwrap_custom_json,
    usage_json,
)
from llm_proxy.dialects.claude.wire import NAME, SYNTHETIC_ID, message_id, read, tool_id
from llm_proxy.dialects.jsonread import Invalid, integer_or, string_or, upstream_fault
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import SSEEvent, SSEParser, encode_event

# ---------------------------------------------------------------------------------------------
# Stream decoding: Anthropic SSE (or already-parsed event objects) -> canonical events
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _UpstreamBlock:
    index: int
    """The canonical index (consecutive, whatever the upstream numbered)."""
    buffered: bool = False
    """Input deltas are held until the block stops (freeform tools and opaque blocks)."""
    parts: list[str] = field(default_factory=list)
    raw: dict[str, JSON] | None = None
    """The opaque block, emitted whole at its stop."""
    no_input: bool = False
    """A tool_use whose input is still the ``{}`` it started with: no input text has arrived yet."""


class ClaudeStreamDecoder:
    """Anthropic stream events -> canonical events. ``feed`` takes SSE bytes, ``feed_event`` parsed objects."""

    def __init__(self, request: Request) -> None:
        self._parser = SSEParser()
        self._model = request.model
        self._custom = custom_tool_names(request)
        self.end = StreamEnd()
        """The stream's state, shared with an envelope decoder around this one (Bedrock's)."""
        self._next_index = 0
        self._blocks: dict[int, _UpstreamBlock] = {}
        self._usage = Usage()
        self._stop_reason: StopReason | None = None
        self._stop_sequence: str | None = None
        self.skip: Callable[[SSEEvent], bool] | None = None
        """Events not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._parser.feed(data):
            if self.skip is not None and self.skip(sse):
                continue
            try:
                obj = orjson.loads(sse.data)
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                out.extend(self.end.error(upstream_fault("the upstream sent a stream event that is not a JSON object")))
            elif obj.get("type") == "content_block_delta" and not self.end.ended and sse.event != "error":
                # Text deltas are most of a stream: ``_on_block_delta``'s event for them, without its dispatch.
                delta, index = obj.get("delta"), obj.get("index")
                block = self._blocks.get(index) if type(index) is int else None
                if block is not None and isinstance(delta, dict) and delta.get("type") == "text_delta":
                    text = delta.get("text")
                    if isinstance(text, str):
                        out.append(TextDelta(index=block.index, text=text))
                        continue
                out.extend(self.feed_event(obj))
            elif sse.event == "error" and obj.get("type") != "error":
                out.extend(self.feed_event({"type": "error", "error": obj.get("error", obj)}))
            else:
                out.extend(self.feed_event(obj))
        return out

    def close(self) -> list[StreamEvent]:
        self._parser.close()
        return self.end.cut_short()

    def feed_event(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        """One Messages stream event object. Pings and unknown event types produce nothing."""
        handler = self._HANDLERS.get(string_or(obj.get("type")))
        if self.end.ended or handler is None:
            return []
        try:
            return handler(self, obj)
        except Invalid as exc:
            return self.end.error(upstream_fault(f"the upstream sent an invalid stream event ({exc.message})"))

    # -- helpers ------------------------------------------------------------------------------

    def _start(self) -> list[StreamEvent]:
        if not self.end.start():
            return []
        return [MessageStart(id=SYNTHETIC_ID, model=self._model)]

    def _stop_block(self, block: _UpstreamBlock) -> list[StreamEvent]:
        joined = "".join(block.parts)
        if block.raw is not None:
            raw = dict(block.raw)
            if joined:
                try:
                    raw["input"] = orjson.loads(joined)
                except orjson.JSONDecodeError:
                    raw["input"] = {"_raw_arguments": joined}
            return [BlockStart(index=block.index, kind="opaque", raw=raw), BlockStop(index=block.index)]
        if block.buffered:
            text = unwrap_custom_json(joined)
            return [ToolArgsDelta(index=block.index, partial_json=text), BlockStop(index=block.index)]
        if block.no_input:  # a tool without parameters: its input is {}, as a whole body would say
            return [ToolArgsDelta(index=block.index, partial_json="{}"), BlockStop(index=block.index)]
        return [BlockStop(index=block.index)]

    # -- handlers -----------------------------------------------------------------------------

    def _on_message_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        if not self.end.start():
            return []
        message = read.obj(obj.get("message"), "message")
        self._usage = merge_usage(Usage(), message.get("usage"))
        msg_id, model = message.get("id"), message.get("model")
        return [
            MessageStart(
                id=msg_id if isinstance(msg_id, str) else SYNTHETIC_ID,
                model=model if isinstance(model, str) else self._model,
                usage=self._usage,
            )
        ]

    def _on_block_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        upstream = read.opt_integer(obj.get("index"), "index")
        block = read.obj(obj.get("content_block"), "content_block")
        if upstream is None or upstream in self._blocks:
            raise Invalid("content_block_start needs a new index", "index")
        state = _UpstreamBlock(index=self._next_index)
        self._next_index += 1
        self._blocks[upstream] = state
        out.extend(self._open_block(state, block))
        return out

    def _open_block(self, state: _UpstreamBlock, block: dict[str, JSON]) -> list[StreamEvent]:
        kind, index = block.get("type"), state.index
        if kind == "text":
            text = read.string(block.get("text", ""), "content_block.text")
            started: list[StreamEvent] = [BlockStart(index=index, kind="text")]
            return started + ([TextDelta(index=index, text=text)] if text else [])
        if kind == "tool_use":
            return self._open_tool_use(state, block)
        if kind == "thinking":
            text = read.string(block.get("thinking", ""), "content_block.thinking")
            signature = read.string(block.get("signature", ""), "content_block.signature")
            out: list[StreamEvent] = [BlockStart(index=index, kind="thinking")]
            out += [ThinkingDelta(index=index, text=text)] if text else []
            return out + ([SignatureDelta(index=index, signature=signature)] if signature else [])
        if kind == "redacted_thinking":
            data = read.string(block.get("data"), "content_block.data")
            return [BlockStart(index=index, kind="redacted_thinking", data=data)]
        state.raw, state.buffered = block, True  # server-tool and other blocks: emitted whole at their stop
        return []

    def _open_tool_use(self, state: _UpstreamBlock, block: dict[str, JSON]) -> list[StreamEvent]:
        name = read.string(block.get("name"), "content_block.name")
        custom = name in self._custom
        state.buffered = custom
        start = BlockStart(
            index=state.index,
            kind="tool_call",
            id=read.string(block.get("id"), "content_block.id"),
            name=name,
            tool_kind="custom" if custom else "function",
        )
        arguments = block.get("input")
        if isinstance(arguments, dict) and arguments:
            # a tool_use that arrived whole rather than as input_json_delta fragments
            text = read.dumps(arguments, "content_block.input")
            if custom:
                state.parts.append(text)
                return [start]
            return [start, ToolArgsDelta(index=state.index, partial_json=text)]
        state.no_input = not custom
        return [start]

    def _on_block_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        block = self._blocks.get(integer_or(obj.get("index"), -1))
        delta = obj.get("delta")
        if block is None or not isinstance(delta, dict):
            return []  # a delta for a block that never started: nothing sensible to attach it to
        kind, index = delta.get("type"), block.index
        if kind == "text_delta":
            return [TextDelta(index=index, text=read.string(delta.get("text"), "delta.text"))]
        if kind == "input_json_delta":
            fragment = read.string(delta.get("partial_json"), "delta.partial_json")
            if block.buffered:
                block.parts.append(fragment)
                return []
            block.no_input = block.no_input and not fragment
            return [ToolArgsDelta(index=index, partial_json=fragment)]
        if kind == "thinking_delta":
            return [ThinkingDelta(index=index, text=read.string(delta.get("thinking"), "delta.thinking"))]
        if kind == "signature_delta":
            return [SignatureDelta(index=index, signature=read.string(delta.get("signature"), "delta.signature"))]
        return []  # citations_delta and future delta types have no canonical form

    def _on_block_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        block = self._blocks.pop(integer_or(obj.get("index"), -1), None)
        return [] if block is None else self._stop_block(block)

    def _on_message_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        delta = obj.get("delta")
        if isinstance(delta, dict):
            if "stop_reason" in delta:
                self._stop_reason = decode_stop_reason(delta["stop_reason"])
            if "stop_sequence" in delta:
                self._stop_sequence = read.opt_string(delta["stop_sequence"], "delta.stop_sequence")
        self._usage = merge_usage(self._usage, obj.get("usage"))  # cumulative: the latest values win
        return self._start()

    def _on_message_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        for upstream in sorted(self._blocks, key=lambda k: self._blocks[k].index):
            out.extend(self._stop_block(self._blocks.pop(upstream)))
        out.append(Finish(stop_reason=self._stop_reason, stop_sequence=self._stop_sequence, usage=self._usage))
        self.end.finish()
        return out

    def _on_error(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        return self.end.error(decode_error_event(obj))

    _HANDLERS: dict[str, Callable[[ClaudeStreamDecoder, dict[str, JSON]], list[StreamEvent]]] = {
        "message_start": _on_message_start,
        "content_block_start": _on_block_start,
        "content_block_delta": _on_block_delta,
        "content_block_stop": _on_block_stop,
        "message_delta": _on_message_delta,
        "message_stop": _on_message_stop,
        "error": _on_error,
    }


# ---------------------------------------------------------------------------------------------
# Stream encoding: canonical events -> Anthropic event objects -> SSE
# ---------------------------------------------------------------------------------------------

_OPAQUE_SUFFIXES = ("_tool_use", "_tool_result")
DELTA_KINDS: dict[type, tuple[str, ...]] = {  # also the Converse encoder's
    TextDelta: ("text", "refusal"),
    ToolArgsDelta: ("tool_call",),
    ThinkingDelta: ("thinking", "reasoning"),
    SignatureDelta: ("thinking", "reasoning"),
}


@dataclass(slots=True)
class ClientBlock:
    index: int
    """The index shown to the client."""
    kind: str
    custom: bool = False
    item_id: str | None = None
    signature: list[str] = field(default_factory=list)


def _start_block_json(event: BlockStart) -> dict[str, JSON] | None:
    if event.kind in ("text", "refusal"):
        return {"type": "text", "text": ""}
    if event.kind == "tool_call":
        return {"type": "tool_use", "id": tool_id(event.id or ""), "name": event.name or "", "input": {}}
    if event.kind in ("thinking", "reasoning"):
        return {"type": "thinking", "thinking": "", "signature": ""}
    if event.kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": event.data or ""}
    raw = event.raw
    # only Claude's own server-tool blocks mean anything to a Claude client
    if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"].endswith(_OPAQUE_SUFFIXES):
        return raw
    drop(NAME, f"stream block {event.kind}")
    return None


_TEXT_DELTA = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%b}}\n\n'
)


def _delta(index: int, delta: dict[str, JSON]) -> dict[str, JSON]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


class ClaudeStreamEncoder:
    """Canonical events -> Anthropic stream events, as objects (``encode_objects``) or SSE (``encode``)."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self.end = StreamEnd()
        """The stream's state, shared with an envelope encoder around this one (Bedrock's)."""
        self._next_index = 0
        self._open: dict[int, ClientBlock] = {}
        self._start_usage = Usage()

    def encode(self, event: StreamEvent) -> bytes:
        if type(event) is TextDelta and self.end.open:
            # Text deltas are most of a stream: the same bytes as the generic path, without building objects.
            block = self._open.get(event.index)
            if block is not None and block.kind in DELTA_KINDS[TextDelta]:
                return _TEXT_DELTA % (block.index, orjson.dumps(event.text))
        return b"".join(encode_event(orjson.dumps(obj), obj["type"]) for obj in self.encode_objects(event))

    def close(self) -> bytes:
        return self.end.close()  # Anthropic streams end with message_stop, which Finish already produced

    def encode_objects(self, event: StreamEvent) -> list[dict[str, JSON]]:
        if self.end.ended:
            return []
        if isinstance(event, StreamError):
            self.end.fail()
            return [error_json(event.error)]
        out: list[dict[str, JSON]] = []
        if self.end.start():
            out.append(self._message_start(event if isinstance(event, MessageStart) else None))
        if isinstance(event, BlockStart):
            out.extend(self._block_start(event))
        elif isinstance(event, BlockStop):
            out.extend(self._block_stop(event.index))
        elif isinstance(event, Finish):
            out.extend(self._finish(event))
        elif not isinstance(event, MessageStart):
            out.extend(self._block_delta(event))
        return out

    def _message_start(self, event: MessageStart | None) -> dict[str, JSON]:
        self._start_usage = event.usage if event is not None else Usage()
        message: dict[str, JSON] = {
            "id": message_id(event.id if event is not None else ""),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(self._start_usage),
        }
        return {"type": "message_start", "message": message}

    def _block_start(self, event: BlockStart) -> list[dict[str, JSON]]:
        block_json = _start_block_json(event)
        if block_json is None or event.index in self._open:
            return []
        custom = event.kind == "tool_call" and event.tool_kind == "custom"
        block = ClientBlock(index=self._next_index, kind=event.kind, custom=custom, item_id=event.id)
        self._next_index += 1
        self._open[event.index] = block
        out = [{"type": "content_block_start", "index": block.index, "content_block": block_json}]
        if custom:  # freeform tool input travels as {"input": "<text>"}, streamed as escaped fragments
            out.append(_delta(block.index, {"type": "input_json_delta", "partial_json": '{"input":"'}))
        return out

    def _block_delta(self, event: TextDelta | ToolArgsDelta | ThinkingDelta | SignatureDelta) -> list[dict[str, JSON]]:
        block = self._open.get(event.index)
        if block is None or block.kind not in DELTA_KINDS[type(event)]:
            return []
        if isinstance(event, TextDelta):
            return [_delta(block.index, {"type": "text_delta", "text": event.text})]
        if isinstance(event, ThinkingDelta):
            return [_delta(block.index, {"type": "thinking_delta", "thinking": event.text})]
        if isinstance(event, SignatureDelta):
            block.signature.append(event.signature)  # sent just before the block stops, as Anthropic does
            return []
        fragment = orjson.dumps(event.partial_json).decode()[1:-1] if block.custom else event.partial_json
        return [_delta(block.index, {"type": "input_json_delta", "partial_json": fragment})]

    def _block_stop(self, index: int) -> list[dict[str, JSON]]:
        block = self._open.pop(index, None)
        if block is None:
            return []
        out: list[dict[str, JSON]] = []
        signature = "".join(block.signature)
        if block.kind == "reasoning":
            signature = reasoning_signature(block.item_id, signature or None)
        if signature:
            out.append(_delta(block.index, {"type": "signature_delta", "signature": signature}))
        if block.custom:
            out.append(_delta(block.index, {"type": "input_json_delta", "partial_json": '"}'}))
        out.append({"type": "content_block_stop", "index": block.index})
        return out

    def _finish(self, event: Finish) -> list[dict[str, JSON]]:
        out: list[dict[str, JSON]] = []
        for index in list(self._open):
            out.extend(self._block_stop(index))
        start, usage = self._start_usage, event.usage
        # Finish carries cumulative usage; an upstream that reported input only at the start still counts
        usage = replace(
            usage,
            input_tokens=usage.input_tokens or start.input_tokens,
            cache_read_tokens=usage.cache_read_tokens or start.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens or start.cache_write_tokens,
        )
        delta = {"stop_reason": stop_reason_json(event.stop_reason), "stop_sequence": event.stop_sequence}
        out.append({"type": "message_delta", "delta": delta, "usage": usage_json(usage)})
        out.append({"type": "message_stop"})
        self.end.finish()
        return out
