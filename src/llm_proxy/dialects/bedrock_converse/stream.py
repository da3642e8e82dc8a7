"""ConverseStream: ``ConverseStreamDecoder`` (event-stream bytes -> canonical events) and ``ConverseStreamEncoder``.

Each frame is one event, named by its ``:event-type`` header, whose payload is the event's JSON (no base64
wrapping, unlike InvokeModel's ``chunk``)::

    messageStart {role} -> per block: [contentBlockStart {start: {toolUse}}] contentBlockDelta* contentBlockStop
    -> messageStop {stopReason} -> metadata {usage, metrics}

Text and reasoning blocks have no ``contentBlockStart``: their first delta opens them. Usage comes last, in
``metadata``, so the canonical ``Finish`` waits for it (or for the end of the stream once ``messageStop`` came);
a stream that ends before ``messageStop`` is cut short. In-stream failures are exception frames
(``:message-type exception``), rendered and read as the ``bedrock`` dialect does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockKind,
    BlockStart,
    BlockStop,
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
from llm_proxy.dialects import bedrock, claude
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.bedrock_converse.response import (
    decode_stop_reason,
    decode_usage,
    stop_reason_json,
    usage_json,
    wants_stop_sequence,
)
from llm_proxy.dialects.bedrock_converse.wire import NAME, read, redacted_bytes, redacted_text
from llm_proxy.dialects.claude.stream import DELTA_KINDS, ClientBlock
from llm_proxy.dialects.jsonread import Invalid, integer_or, obj_or_empty, upstream_fault
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.eventstream import (
    EVENTSTREAM_CONTENT_TYPE,
    EventStreamDecoder,
    EventStreamError,
    Frame,
    event_frame,
    exception_frame,
    header_text,
)

SYNTHETIC_ID = "converse"
"""The message id of a Converse stream (Converse names none)."""

STREAM_EXCEPTIONS = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "validationException",
        "throttlingException",
        "serviceUnavailableException",
    }
)
"""The exceptions ConverseStream's event stream declares (botocore's ``ConverseStreamOutput``)."""


def stream_exception_type(error: ProxyError) -> str:
    """The ``:exception-type`` for ``error``: Bedrock's choice, within the ones ConverseStream declares."""
    chosen = bedrock.stream_exception_type(error)
    return chosen if chosen in STREAM_EXCEPTIONS else "modelStreamErrorException"


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Upstream:
    index: int
    kind: BlockKind
    no_input: bool = False
    """A toolUse with no input fragment yet: its input is ``{}``."""
    custom: list[str] | None = None
    """The input fragments of a freeform tool's call, held until the block stops (``{"input": text}``)."""


class ConverseStreamDecoder:
    """Event-stream bytes -> frames (botocore, CRC-checked) -> Converse events -> canonical events."""

    def __init__(self, request: Request) -> None:
        self._frames = EventStreamDecoder()
        self._model = request.model
        self._custom = claude.custom_tool_names(request)
        self.end = StreamEnd()
        self._blocks: dict[int, _Upstream] = {}
        self._next_index = 0
        self._stop: StopReason | None = None
        self._stop_sequence: str | None = None
        self._stopped = False
        self._usage: Usage | None = None
        self.skip: Callable[[Frame], bool] | None = None
        """Frames not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self.end.ended:
            return []
        try:
            frames = self._frames.feed(data)
        except EventStreamError as exc:
            return self.end.error(upstream_fault(f"the upstream sent a corrupt event stream: {exc}"))
        out: list[StreamEvent] = []
        for frame in frames:
            if self.skip is not None and self.skip(frame):
                continue
            out.extend(self._on_frame(frame))
            if self.end.ended:
                break  # nothing may follow Finish or StreamError
        return out

    def close(self) -> list[StreamEvent]:
        if self._stopped and not self.end.ended:
            return self._finish()  # messageStop came; only the metadata (usage) is missing
        return self.end.cut_short()

    def _on_frame(self, frame: Frame) -> list[StreamEvent]:
        message_type = frame.headers.get(":message-type")
        if message_type == "exception":
            exception_type = header_text(frame.headers.get(":exception-type")) or "internalServerException"
            return self.end.error(bedrock.stream_exception_error(exception_type, frame.payload))
        if message_type == "error":
            code, text = header_text(frame.headers.get(":error-code")), header_text(frame.headers.get(":error-message"))
            return self.end.error(upstream_fault(f"the upstream stream failed: {code}: {text}"))
        handler = self._HANDLERS.get(header_text(frame.headers.get(":event-type")))
        if message_type != "event" or handler is None:
            return []  # event types added later carry nothing canonical
        try:
            obj = orjson.loads(frame.payload)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            return self.end.error(upstream_fault("the upstream sent a stream event that is not a JSON object"))
        try:
            return handler(self, obj)
        except Invalid as exc:
            return self.end.error(upstream_fault(f"the upstream sent an invalid stream event ({exc.message})"))

    def _start(self) -> list[StreamEvent]:
        return [MessageStart(id=SYNTHETIC_ID, model=self._model)] if self.end.start() else []

    def _open(self, upstream: int, kind: BlockKind, **start: str | None) -> tuple[_Upstream, BlockStart]:
        block = _Upstream(index=self._next_index, kind=kind)
        self._next_index += 1
        self._blocks[upstream] = block
        return block, BlockStart(index=block.index, kind=kind, **start)  # type: ignore[arg-type]

    def _stop_block(self, block: _Upstream) -> list[StreamEvent]:
        if block.custom is not None:
            text = claude.unwrap_custom_json("".join(block.custom))
            return [ToolArgsDelta(index=block.index, partial_json=text), BlockStop(index=block.index)]
        if block.no_input:  # a tool without parameters: its input is {}, as a whole answer would say
            return [ToolArgsDelta(index=block.index, partial_json="{}"), BlockStop(index=block.index)]
        return [BlockStop(index=block.index)]

    def _finish(self) -> list[StreamEvent]:
        self.end.finish()
        return [Finish(stop_reason=self._stop, stop_sequence=self._stop_sequence, usage=self._usage or Usage())]

    # -- handlers -----------------------------------------------------------------------------

    def _on_message_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        return self._start()

    def _on_block_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        upstream = read.integer(obj.get("contentBlockIndex"), "contentBlockIndex")
        tool = obj_or_empty(obj_or_empty(obj.get("start")).get("toolUse"))
        if upstream in self._blocks:
            raise Invalid("contentBlockStart needs a new contentBlockIndex", "contentBlockIndex")
        if not tool:
            return out  # other starts (images, tool results of server tools) have no canonical block
        tool_id = read.string(tool.get("toolUseId"), "start.toolUse.toolUseId")
        name = read.string(tool.get("name"), "start.toolUse.name")
        block, start = self._open(upstream, "tool_call", id=tool_id, name=name)
        if name in self._custom:
            block.custom = []
            start = BlockStart(index=block.index, kind="tool_call", id=tool_id, name=name, tool_kind="custom")
        else:
            block.no_input = True
        return [*out, start]

    def _on_block_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        upstream = read.integer(obj.get("contentBlockIndex"), "contentBlockIndex")
        delta = read.obj(obj.get("delta"), "delta")
        block = self._blocks.get(upstream)
        if "text" in delta:
            if block is None:
                block, start = self._open(upstream, "text")
                out.append(start)
            if block.kind == "text":
                out.append(TextDelta(index=block.index, text=read.string(delta["text"], "delta.text")))
        elif "toolUse" in delta:
            fragment = read.string(read.obj(delta["toolUse"], "delta.toolUse").get("input"), "delta.toolUse.input")
            if block is not None and block.custom is not None:
                block.custom.append(fragment)
            elif block is not None and block.kind == "tool_call":
                block.no_input = block.no_input and not fragment
                out.append(ToolArgsDelta(index=block.index, partial_json=fragment))
        elif "reasoningContent" in delta:
            out.extend(self._reasoning(upstream, block, read.obj(delta["reasoningContent"], "delta.reasoningContent")))
        return out  # citations and future deltas have no canonical form

    def _reasoning(self, upstream: int, block: _Upstream | None, delta: dict[str, JSON]) -> list[StreamEvent]:
        if "redactedContent" in delta:
            data = redacted_text(read.string(delta["redactedContent"], "delta.reasoningContent.redactedContent"))
            if block is not None or data is None:
                return []
            return [self._open(upstream, "redacted_thinking", data=data)[1]]
        out: list[StreamEvent] = []
        if block is None:
            block, start = self._open(upstream, "thinking")
            out.append(start)
        if block.kind != "thinking":
            return out
        if "text" in delta:
            out.append(ThinkingDelta(index=block.index, text=read.string(delta["text"], "delta.reasoningContent.text")))
        if "signature" in delta:
            signature = read.string(delta["signature"], "delta.reasoningContent.signature")
            out.append(SignatureDelta(index=block.index, signature=signature))
        return out

    def _on_block_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        block = self._blocks.pop(integer_or(obj.get("contentBlockIndex"), -1), None)
        return [] if block is None else self._stop_block(block)

    def _on_message_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        for upstream in sorted(self._blocks, key=lambda k: self._blocks[k].index):
            out.extend(self._stop_block(self._blocks.pop(upstream)))
        self._stop = decode_stop_reason(obj.get("stopReason"))
        sequence = obj_or_empty(obj.get("additionalModelResponseFields")).get("stop_sequence")
        self._stop_sequence = sequence if isinstance(sequence, str) else None
        self._stopped = True
        return out + (self._finish() if self._usage is not None else [])

    def _on_metadata(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        self._usage = decode_usage(obj.get("usage"))
        return self._finish() if self._stopped else []

    _HANDLERS: dict[str, Callable[[ConverseStreamDecoder, dict[str, JSON]], list[StreamEvent]]] = {
        "messageStart": _on_message_start,
        "contentBlockStart": _on_block_start,
        "contentBlockDelta": _on_block_delta,
        "contentBlockStop": _on_block_stop,
        "messageStop": _on_message_stop,
        "metadata": _on_metadata,
    }


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _frame(event_type: str, obj: dict[str, JSON]) -> bytes:
    return event_frame(event_type, orjson.dumps(obj))


def _delta(index: int, delta: dict[str, JSON]) -> bytes:
    return _frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})


class ConverseStreamEncoder:
    """Canonical events -> ConverseStream event frames."""

    content_type = EVENTSTREAM_CONTENT_TYPE

    def __init__(self, request: Request) -> None:
        self.end = StreamEnd()
        self._open: dict[int, ClientBlock] = {}
        self._next_index = 0
        self._start_usage = Usage()
        self._stop_sequence = wants_stop_sequence(request)

    def close(self) -> bytes:
        return self.end.close()  # ConverseStream ends with messageStop and metadata, which Finish produced

    def encode(self, event: StreamEvent) -> bytes:
        if self.end.ended:
            return b""
        if isinstance(event, StreamError):
            self.end.fail()
            return exception_frame(stream_exception_type(event.error), event.error.message)
        out: list[bytes] = []
        if self.end.start():
            if isinstance(event, MessageStart):
                self._start_usage = event.usage
            out.append(_frame("messageStart", {"role": "assistant"}))
        if isinstance(event, BlockStart):
            out.extend(self._block_start(event))
        elif isinstance(event, BlockStop):
            out.extend(self._block_stop(event.index))
        elif isinstance(event, Finish):
            out.extend(self._finish(event))
        elif not isinstance(event, MessageStart):
            out.extend(self._block_delta(event))
        return b"".join(out)

    def _block_start(self, event: BlockStart) -> list[bytes]:
        if event.index in self._open or event.kind == "opaque":
            if event.kind == "opaque":
                drop(NAME, "stream block of another dialect")
            return []
        custom = event.kind == "tool_call" and event.tool_kind == "custom"
        block = ClientBlock(index=self._next_index, kind=event.kind, custom=custom, item_id=event.id)
        self._next_index += 1
        self._open[event.index] = block
        if event.kind == "redacted_thinking":
            return [_delta(block.index, {"reasoningContent": {"redactedContent": redacted_bytes(event.data or "")}})]
        if event.kind != "tool_call":
            return []  # text and reasoning blocks open with their first delta
        tool = {"toolUseId": claude.tool_id(event.id or ""), "name": event.name or ""}
        out = [_frame("contentBlockStart", {"start": {"toolUse": tool}, "contentBlockIndex": block.index})]
        if custom:  # freeform tool input travels as {"input": "<text>"}, streamed as escaped fragments
            out.append(_delta(block.index, {"toolUse": {"input": '{"input":"'}}))
        return out

    def _block_delta(self, event: TextDelta | ToolArgsDelta | ThinkingDelta | SignatureDelta) -> list[bytes]:
        block = self._open.get(event.index)
        if block is None or block.kind not in DELTA_KINDS[type(event)]:
            return []
        if isinstance(event, TextDelta):
            return [_delta(block.index, {"text": event.text})]
        if isinstance(event, ThinkingDelta):
            return [_delta(block.index, {"reasoningContent": {"text": event.text}})]
        if isinstance(event, SignatureDelta):
            block.signature.append(event.signature)  # sent just before the block stops, as Bedrock does
            return []
        fragment = orjson.dumps(event.partial_json).decode()[1:-1] if block.custom else event.partial_json
        return [_delta(block.index, {"toolUse": {"input": fragment}})]

    def _block_stop(self, index: int) -> list[bytes]:
        block = self._open.pop(index, None)
        if block is None:
            return []
        out: list[bytes] = []
        signature = "".join(block.signature)
        if block.kind == "reasoning":
            signature = claude.reasoning_signature(block.item_id, signature or None)
        if signature:
            out.append(_delta(block.index, {"reasoningContent": {"signature": signature}}))
        if block.custom:
            out.append(_delta(block.index, {"toolUse": {"input": '"}'}}))
        out.append(_frame("contentBlockStop", {"contentBlockIndex": block.index}))
        return out

    def _finish(self, event: Finish) -> list[bytes]:
        out: list[bytes] = []
        for index in list(self._open):
            out.extend(self._block_stop(index))
        stop: dict[str, JSON] = {"stopReason": stop_reason_json(event.stop_reason)}
        if self._stop_sequence and event.stop_sequence is not None:
            stop["additionalModelResponseFields"] = {"stop_sequence": event.stop_sequence}
        out.append(_frame("messageStop", stop))
        start, usage = self._start_usage, event.usage
        # Finish carries cumulative usage; an upstream that reported input only at the start still counts
        usage = Usage(
            input_tokens=usage.input_tokens or start.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens or start.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens or start.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )
        out.append(_frame("metadata", {"usage": usage_json(usage), "metrics": {"latencyMs": 0}}))
        self.end.finish()
        return out
