"""Decoding an upstream's Responses stream: SSE events in, canonical stream events out.

Each reasoning item, content part and tool call becomes one canonical block; text sent again in a
``.done`` event is used only when no delta carried it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from llm_proxy.dialects.jsonread import integer_or, list_or_empty, obj_or_empty, string_or
from llm_proxy.dialects.openai_errors import RESPONSES_RULES
from llm_proxy.dialects.openai_responses.output import decode_stop_reason, decode_usage
from llm_proxy.dialects.openai_responses.wire import log
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.framing.sse import SSEEvent, SSEParser


@dataclass(slots=True)
class _UpBlock:
    index: int
    streamed: bool = False
    """A delta arrived for this block, so its text must not be repeated from the ``.done`` event."""


_Key = tuple[int, int]
"""(output_index, content_index); -1 stands for a whole item (reasoning, tool call)."""


class ResponsesStreamDecoder:
    """Responses SSE bytes -> canonical events (one canonical block per reasoning item, content part, call)."""

    def __init__(self, request: Request) -> None:
        self._parser = SSEParser()
        self._model = request.model
        self._end = StreamEnd()
        self._next_index = 0
        self._open: dict[_Key, _UpBlock] = {}
        self._closed: set[_Key] = set()
        self._has_call = False
        self.skip: Callable[[SSEEvent], bool] | None = None
        """Events not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._parser.feed(data):
            if self._end.ended or (self.skip is not None and self.skip(sse)):
                continue
            try:
                obj = orjson.loads(sse.data)
            except orjson.JSONDecodeError:
                log.debug("ignored a stream event that is not JSON: %.80s", sse.data)
                continue
            if not isinstance(obj, dict):
                continue
            kind = obj.get("type") if isinstance(obj.get("type"), str) else sse.event
            handler = self._HANDLERS.get(kind or "")
            if handler is not None:
                out.extend(handler(self, obj))
        return out

    def close(self) -> list[StreamEvent]:
        self._parser.close()
        return self._end.cut_short()

    # -- helpers ------------------------------------------------------------------------------

    def _start(self, response: Mapping[str, JSON] | None = None) -> list[StreamEvent]:
        if not self._end.start():
            return []
        resp = response or {}
        created = resp.get("created_at")
        return [
            MessageStart(
                id=string_or(resp.get("id")) or "resp_synthesized",
                model=string_or(resp.get("model")) or self._model,
                created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else None,
            )
        ]

    def _ensure(self, key: _Key, kind: BlockKind, **fields: JSON) -> tuple[list[StreamEvent], _UpBlock]:
        out = self._start()
        block = self._open.get(key)
        if block is None:
            block = _UpBlock(index=self._next_index)
            self._next_index += 1
            self._open[key] = block
            out.append(BlockStart(index=block.index, kind=kind, **fields))
        return out, block

    def _stop(self, key: _Key) -> list[StreamEvent]:
        block = self._open.pop(key, None)
        self._closed.add(key)
        return [BlockStop(index=block.index)] if block is not None else []

    def _ensure_call(self, key: _Key, item: Mapping[str, JSON]) -> tuple[list[StreamEvent], _UpBlock]:
        self._has_call = True
        custom = item.get("type") == "custom_tool_call"
        return self._ensure(
            key,
            "tool_call",
            id=string_or(item.get("call_id")) or string_or(item.get("id")),
            name=string_or(item.get("name")),
            tool_kind="custom" if custom else "function",
        )

    # -- handlers -----------------------------------------------------------------------------

    def _on_created(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        return self._start(obj_or_empty(obj.get("response")))

    def _on_item_added(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        item, key = obj_or_empty(obj.get("item")), (integer_or(obj.get("output_index")), -1)
        kind = item.get("type")
        if kind == "reasoning":
            return self._ensure(key, "reasoning", id=string_or(item.get("id")) or None)[0]
        if kind not in ("function_call", "custom_tool_call"):
            return self._start()
        out, block = self._ensure_call(key, item)
        initial = string_or(item.get("arguments" if kind == "function_call" else "input"))
        if initial:
            block.streamed = True
            out.append(ToolArgsDelta(index=block.index, partial_json=initial))
        return out

    def _on_summary_part(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure(
            (integer_or(obj.get("output_index")), -1), "reasoning", id=string_or(obj.get("item_id")) or None
        )
        if integer_or(obj.get("summary_index")) > 0:
            # Summary parts are separate paragraphs; canonical thinking text is one string.
            block.streamed = True
            out.append(ThinkingDelta(index=block.index, text="\n\n"))
        return out

    def _on_summary_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure(
            (integer_or(obj.get("output_index")), -1), "reasoning", id=string_or(obj.get("item_id")) or None
        )
        block.streamed = True
        if string_or(obj.get("delta")):
            out.append(ThinkingDelta(index=block.index, text=string_or(obj.get("delta"))))
        return out

    def _on_content_added(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        part = obj_or_empty(obj.get("part"))
        kind: BlockKind = "refusal" if part.get("type") == "refusal" else "text"
        out, block = self._ensure((integer_or(obj.get("output_index")), integer_or(obj.get("content_index"))), kind)
        initial = string_or(part.get("refusal" if kind == "refusal" else "text"))
        if initial:
            block.streamed = True
            out.append(TextDelta(index=block.index, text=initial))
        return out

    def _on_text_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        kind: BlockKind = "refusal" if obj.get("type") == "response.refusal.delta" else "text"
        out, block = self._ensure((integer_or(obj.get("output_index")), integer_or(obj.get("content_index"))), kind)
        block.streamed = True
        if string_or(obj.get("delta")):
            out.append(TextDelta(index=block.index, text=string_or(obj.get("delta"))))
        return out

    def _on_content_done(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        key = (integer_or(obj.get("output_index")), integer_or(obj.get("content_index")))
        return self._finish_part(key, obj_or_empty(obj.get("part"))) if key not in self._closed else []

    def _finish_part(self, key: _Key, part: Mapping[str, JSON]) -> list[StreamEvent]:
        refusal = part.get("type") == "refusal"
        out, block = self._ensure(key, "refusal" if refusal else "text")
        text = string_or(part.get("refusal" if refusal else "text"))
        if text and not block.streamed:
            out.append(TextDelta(index=block.index, text=text))
        return out + self._stop(key)

    def _on_args_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        custom = obj.get("type") == "response.custom_tool_call_input.delta"
        item = {"type": "custom_tool_call" if custom else "function_call", "id": obj.get("item_id")}
        out, block = self._ensure_call((integer_or(obj.get("output_index")), -1), item)
        block.streamed = True
        if string_or(obj.get("delta")):
            out.append(ToolArgsDelta(index=block.index, partial_json=string_or(obj.get("delta"))))
        return out

    def _on_item_done(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        item, oi = obj_or_empty(obj.get("item")), integer_or(obj.get("output_index"))
        kind = item.get("type")
        if kind == "message":
            out: list[StreamEvent] = []
            for ci, part in enumerate(list_or_empty(item.get("content"))):
                if (oi, ci) not in self._closed and isinstance(part, dict):
                    out.extend(self._finish_part((oi, ci), part))
            return out or self._start()
        if kind == "reasoning":
            return self._finish_reasoning(oi, item)
        if kind in ("function_call", "custom_tool_call"):
            out, block = self._ensure_call((oi, -1), item)
            value = string_or(item.get("arguments" if kind == "function_call" else "input"))
            if value and not block.streamed:
                out.append(ToolArgsDelta(index=block.index, partial_json=value))
            return out + self._stop((oi, -1))
        # Hosted-tool items (web search, ...) pass whole, for Responses clients only.
        out, _ = self._ensure((oi, -1), "opaque", raw=item)
        return out + self._stop((oi, -1))

    def _finish_reasoning(self, oi: int, item: Mapping[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure((oi, -1), "reasoning", id=string_or(item.get("id")) or None)
        summary = [string_or(s.get("text")) for s in list_or_empty(item.get("summary")) if isinstance(s, dict)]
        text = "\n\n".join(summary)
        if text and not block.streamed:
            out.append(ThinkingDelta(index=block.index, text=text))
        encrypted = string_or(item.get("encrypted_content"))  # authoritative only here, per the API docs
        if encrypted:
            out.append(SignatureDelta(index=block.index, signature=encrypted))
        return out + self._stop((oi, -1))

    def _on_terminal(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        response = obj_or_empty(obj.get("response"))
        out = self._start(response)
        for key in sorted(self._open, key=lambda k: self._open[k].index):
            out.extend(self._stop(key))
        status = "incomplete" if obj.get("type") == "response.incomplete" else response.get("status")
        stop = decode_stop_reason(status, response.get("incomplete_details"), self._has_call)
        out.append(Finish(stop_reason=stop, usage=decode_usage(response.get("usage"))))
        self._end.finish()
        return out

    def _on_failed(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        error = obj_or_empty(obj.get("response")).get("error") or {"message": "the upstream response failed"}
        return self._end.error(RESPONSES_RULES.from_object(error))

    def _on_error(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        inner = obj.get("error")
        return self._end.error(RESPONSES_RULES.from_object(inner if isinstance(inner, dict) else obj))

    _HANDLERS = {
        "response.created": _on_created,
        "response.in_progress": _on_created,
        "response.output_item.added": _on_item_added,
        "response.reasoning_summary_part.added": _on_summary_part,
        "response.reasoning_summary_text.delta": _on_summary_delta,
        "response.content_part.added": _on_content_added,
        "response.output_text.delta": _on_text_delta,
        "response.refusal.delta": _on_text_delta,
        "response.content_part.done": _on_content_done,
        "response.function_call_arguments.delta": _on_args_delta,
        "response.custom_tool_call_input.delta": _on_args_delta,
        "response.output_item.done": _on_item_done,
        "response.completed": _on_terminal,
        "response.incomplete": _on_terminal,
        "response.failed": _on_failed,
        "error": _on_error,
    }
