"""The Messages response object: ``decode_message`` and ``encode_message``, with stop reasons and usage.

The stop reason and usage mappings and the freeform-tool unwrapping are shared with the stream codec.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
    Image,
    Part,
    Request,
    Response,
    StopReason,
    Tool,
    ToolCall,
    ToolResult,
    Usage,
)
from llm_proxy.dialects.base import Summary, drop
from llm_proxy.dialects.claude.blocks import decode_blocks, encode_part
from llm_proxy.dialects.claude.wire import FAMILY, NAME, message_id, read
from llm_proxy.dialects.jsonread import Invalid, bad_upstream, integer_or, merge_extra, rest

_STOP_REASONS = {s.value: s for s in StopReason if s is not StopReason.CONTENT_FILTER}
_USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("output_tokens", "output_tokens"),
)


def decode_stop_reason(value: JSON) -> StopReason | None:
    if value is None:
        return None
    return _STOP_REASONS.get(value, StopReason.END_TURN) if isinstance(value, str) else None


def stop_reason_json(reason: StopReason | None) -> str | None:
    if reason is None:
        return None
    return "refusal" if reason is StopReason.CONTENT_FILTER else reason.value


def usage_json(usage: Usage) -> dict[str, JSON]:
    return {wire: getattr(usage, attr) for wire, attr in _USAGE_FIELDS}


def merge_usage(usage: Usage, raw: JSON) -> Usage:
    """``usage`` with every count that ``raw`` (a wire usage object) carries replaced by its value."""
    if not isinstance(raw, dict):
        return usage
    counts = {attr: integer_or(raw[wire]) for wire, attr in _USAGE_FIELDS if raw.get(wire) is not None}
    return replace(usage, **counts)


def custom_tool_names(request: Request) -> frozenset[str]:
    return frozenset(t.name for t in request.tools or () if isinstance(t, Tool) and t.kind == "custom")


def _unwrap_custom(part: Part, custom: frozenset[str]) -> Part:
    """A tool_use of a freeform tool back to its raw text input (see CUSTOM_TOOL_SCHEMA)."""
    if not isinstance(part, ToolCall) or part.name not in custom:
        return part
    return replace(part, kind="custom", arguments=unwrap_custom_json(part.arguments))


def _decode_message_body(body: JSON, request: Request, origin: str) -> Response:
    obj = read.obj(body, "response")
    custom = custom_tool_names(request)
    blocks = decode_blocks(obj.get("content", []), "content")
    extra = rest(obj, ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"))
    usage = obj.get("usage")
    if isinstance(usage, dict):
        usage_extra = rest(usage, (wire for wire, _ in _USAGE_FIELDS))
        if usage_extra:
            extra["usage"] = usage_extra
    model = obj.get("model")
    return Response(
        id=read.string(obj.get("id", ""), "id"),
        model=model if isinstance(model, str) else request.model,
        content=tuple(_unwrap_custom(p, custom) for p in blocks),
        stop_reason=decode_stop_reason(obj.get("stop_reason")),
        stop_sequence=read.opt_string(obj.get("stop_sequence"), "stop_sequence"),
        usage=merge_usage(Usage(), usage),
        extra=extra,
        origin=origin,
    )


def decode_message(body: JSON, request: Request, *, origin: str = NAME) -> Response:
    """A Messages response body as a canonical response; a malformed one raises ``UpstreamError`` (502)."""
    try:
        return _decode_message_body(body, request, origin)
    except Invalid as exc:
        raise bad_upstream(f"the upstream sent an invalid Messages response ({exc.message})") from None


def _response_parts(parts: Iterable[Part]) -> Iterable[Part]:
    for part in parts:
        if isinstance(part, Image | ToolResult):
            drop(NAME, f"{type(part).__name__} in an assistant response")  # Claude responses have no such block
        else:
            yield part


def encode_message(response: Response, request: Request) -> dict[str, JSON]:
    """A canonical response as a Messages response object shown under the client's model name."""
    same = response.origin in FAMILY
    content = [encode_part(p, same, toward_client=True) for p in _response_parts(response.content)]
    out: dict[str, JSON] = {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [b for b in content if b is not None],
        "stop_reason": stop_reason_json(response.stop_reason),
        "stop_sequence": response.stop_sequence,
        "usage": usage_json(response.usage),
    }
    if same:
        merge_extra(out, response.extra, nested=True)
    return out


def unwrap_custom_json(text: str) -> str:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return text
    inner = value.get("input") if isinstance(value, dict) else None
    return inner if isinstance(inner, str) else text


def summarize(doc: dict[str, Any]) -> Summary:
    """Model, usage and stop reason of a Messages answer (Bedrock's invoke answers too), without its content."""
    model = doc.get("model")
    return Summary(
        model if isinstance(model, str) else "",
        decode_stop_reason(doc.get("stop_reason")),
        merge_usage(Usage(), doc.get("usage")),
    )
