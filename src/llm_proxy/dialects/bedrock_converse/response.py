"""The Converse response: ``output.message``, ``stopReason``, ``usage`` and ``metrics``; stop reasons and usage.

Converse answers carry no id and no model (the caller knows both). ``inputTokens`` counts the input that was
neither read from nor written to the cache, as Anthropic's ``input_tokens`` does; ``totalTokens`` is the sum of
all four counts. A stop reason with no canonical twin (``guardrail_intervened``, ``malformed_tool_use``) is
kept in ``extra`` so that a Converse client of a Converse upstream sees it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from llm_proxy.canonical import JSON, Image, Part, Request, Response, StopReason, ToolCall, ToolResult, Usage
from llm_proxy.dialects import claude
from llm_proxy.dialects.base import Summary, drop
from llm_proxy.dialects.bedrock_converse.blocks import decode_blocks, encode_parts
from llm_proxy.dialects.bedrock_converse.wire import NAME, read
from llm_proxy.dialects.jsonread import Invalid, bad_upstream, integer_or, obj_or_empty, rest

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "guardrail_intervened": StopReason.CONTENT_FILTER,
    "content_filtered": StopReason.CONTENT_FILTER,
    "malformed_model_output": StopReason.END_TURN,
    "malformed_tool_use": StopReason.END_TURN,
    "model_context_window_exceeded": StopReason.CONTEXT_WINDOW_EXCEEDED,
}
"""Converse ``stopReason`` -> canonical (an unknown one reads as ``end_turn``)."""

_WIRE_STOPS: dict[StopReason, str] = {
    StopReason.END_TURN: "end_turn",
    StopReason.TOOL_USE: "tool_use",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.PAUSE_TURN: "end_turn",
    StopReason.REFUSAL: "content_filtered",
    StopReason.CONTENT_FILTER: "content_filtered",
    StopReason.CONTEXT_WINDOW_EXCEEDED: "model_context_window_exceeded",
}

_USAGE_FIELDS = (
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("cacheReadInputTokens", "cache_read_tokens"),
    ("cacheWriteInputTokens", "cache_write_tokens"),
)
_STOP_SEQUENCE_PATH = "/stop_sequence"
"""The ``additionalModelResponseFieldPaths`` entry asking Claude on Converse for the matched stop sequence."""


def decode_stop_reason(value: JSON) -> StopReason | None:
    return STOP_REASONS.get(value, StopReason.END_TURN) if isinstance(value, str) else None


def stop_reason_json(reason: StopReason | None) -> str:
    """Converse requires a stop reason: a stream or answer without one ended its turn."""
    return _WIRE_STOPS[reason] if reason is not None else "end_turn"


def decode_usage(raw: JSON) -> Usage:
    obj = obj_or_empty(raw)
    return Usage(**{attr: integer_or(obj.get(wire)) for wire, attr in _USAGE_FIELDS})


def usage_json(usage: Usage) -> dict[str, JSON]:
    out: dict[str, JSON] = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.prompt_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["cacheReadInputTokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        out["cacheWriteInputTokens"] = usage.cache_write_tokens
    return out


def unwrap_custom(part: Part, custom: frozenset[str]) -> Part:
    """A toolUse of a freeform (Responses ``custom``) tool back to its raw text input (``{"input": text}``)."""
    if not isinstance(part, ToolCall) or part.name not in custom:
        return part
    return replace(part, kind="custom", arguments=claude.unwrap_custom_json(part.arguments))


def _decode(body: JSON, request: Request) -> Response:
    obj = read.obj(body, "response")
    output = read.obj(obj.get("output"), "output")
    message = read.obj(output.get("message"), "output.message")
    custom = claude.custom_tool_names(request)
    content = tuple(
        unwrap_custom(p, custom) for p in decode_blocks(message.get("content", []), "output.message.content")
    )
    wire_stop = obj.get("stopReason")
    extra = rest(obj, ("output", "stopReason", "usage", "metrics"))
    stop = decode_stop_reason(wire_stop)
    if isinstance(wire_stop, str) and _WIRE_STOPS.get(stop or StopReason.END_TURN) != wire_stop:
        extra["stopReason"] = wire_stop
    fields = obj_or_empty(obj.get("additionalModelResponseFields"))
    sequence = fields.get("stop_sequence")
    return Response(
        id="",
        model=request.model,
        content=content,
        stop_reason=stop,
        stop_sequence=sequence if isinstance(sequence, str) else None,
        usage=decode_usage(obj.get("usage")),
        extra=extra,
        origin=NAME,
    )


def decode_response(body: JSON, request: Request) -> Response:
    """A Converse answer as a canonical response; a malformed one raises ``UpstreamError`` (502)."""
    try:
        return _decode(body, request)
    except Invalid as exc:
        raise bad_upstream(f"the upstream sent an invalid Converse response ({exc.message})") from None


def _answer_parts(parts: Iterable[Part]) -> Iterable[Part]:
    for part in parts:
        if isinstance(part, Image | ToolResult):
            drop(NAME, f"{type(part).__name__} in an assistant response")
        else:
            yield part


def wants_stop_sequence(request: Request) -> bool:
    paths = request.extra.get("additionalModelResponseFieldPaths") if request.origin == NAME else None
    return isinstance(paths, list) and _STOP_SEQUENCE_PATH in paths


def encode_response(response: Response, request: Request) -> dict[str, JSON]:
    """A canonical response as a Converse answer (latency is not the codec's to measure: 0)."""
    same = response.origin == NAME
    wire_stop = response.extra.get("stopReason") if same else None
    content = encode_parts(_answer_parts(response.content), same, toward_client=True)
    out: dict[str, JSON] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": wire_stop if isinstance(wire_stop, str) else stop_reason_json(response.stop_reason),
        "usage": usage_json(response.usage),
        "metrics": {"latencyMs": 0},
    }
    if same:
        out.update({k: v for k, v in response.extra.items() if k != "stopReason"})
    elif response.stop_sequence is not None and wants_stop_sequence(request):
        out["additionalModelResponseFields"] = {"stop_sequence": response.stop_sequence}
    return out


def summarize(doc: dict[str, Any]) -> Summary:
    """Usage and stop reason of a Converse answer, without its content (proxy mode)."""
    return Summary("", decode_stop_reason(doc.get("stopReason")), decode_usage(doc.get("usage")))
