"""Responses output items, status, usage and the ``response`` object, as clients receive them.

Shared by the response and stream encoders (and the decoders, for usage and stop reasons): item builders
for reasoning, messages and tool calls, Claude thinking hidden in a ``claude-thinking`` carry, ``resp_``
ids, stop reason <-> status, and OpenAI-style usage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from llm_proxy.canonical import JSON, Reasoning, Request, StopReason, Usage
from llm_proxy.dialects.base import Summary
from llm_proxy.dialects.jsonread import integer_or, obj_or_empty
from llm_proxy.dialects.openai_responses.request import encode_tool_choice
from llm_proxy.dialects.openai_responses.wire import custom_names
from llm_proxy.framing.carry import encode_carry

# Output item types of hosted tools: forwarded to a Responses client only (never invented from other dialects).
_HOSTED_ITEM_TYPES = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "computer_call",
        "computer_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
        "compaction",
        "item_reference",
    }
)


def custom_tool_input(arguments: str) -> str:
    """The freeform text of a call to a client-declared ``custom`` tool that came back function-style.

    The Claude and Chat encoders declare a custom tool to their upstream as a function with one string
    parameter ``input``; the call comes back as ``{"input": "<text>"}`` and the text is the custom input.
    Anything else (not JSON, no string ``input``) is passed through unchanged.
    """
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def response_id(upstream_id: str) -> str:
    """The ``resp_`` id for the client: a Responses upstream's own id, else one derived from ``upstream_id``.

    The derived form keeps the codec pure and its output reproducible. It never names a stored
    conversation: wherever the proxy stores one (``previous_response_id`` over a non-Responses upstream),
    the shell mints a random ``resp_`` id first (``llm_proxy.session.memory.new_response_id``) and that id passes
    through here unchanged, because upstream ids are not guaranteed unique.
    """
    if upstream_id.startswith("resp_"):
        return upstream_id
    for prefix in ("msg_", "chatcmpl-"):
        if upstream_id.startswith(prefix):
            return "resp_" + upstream_id[len(prefix) :]
    return "resp_" + (upstream_id or uuid.uuid4().hex)


def thinking_carry(part: Reasoning) -> str:
    """The envelope that carries Claude thinking (or redacted thinking) as ``encrypted_content``."""
    if part.redacted is not None:
        return encode_carry("claude-thinking", {"r": part.redacted})
    return encode_carry("claude-thinking", {"t": part.text, "s": part.signature})


def reasoning_out(item_id: str, summary: Iterable[str], encrypted: str | None, content: JSON = None) -> JSON:
    out: dict[str, JSON] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": s} for s in summary],
    }
    if content is not None:
        out["content"] = content
    if encrypted is not None:
        out["encrypted_content"] = encrypted
    return out


def message_out(item_id: str, content: list[JSON], status: str) -> JSON:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def text_out(text: str, annotations: JSON = None) -> JSON:
    return {"type": "output_text", "annotations": annotations if isinstance(annotations, list) else [], "text": text}


def call_out(item_id: str, call_id: str, name: str, value: str, custom: bool, status: str) -> JSON:
    if custom:
        return {"id": item_id, "type": "custom_tool_call", "call_id": call_id, "name": name, "input": value}
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": value,
        "call_id": call_id,
        "name": name,
    }


def is_hosted_item(raw: JSON) -> bool:
    return isinstance(raw, dict) and raw.get("type") in _HOSTED_ITEM_TYPES


def status_for(stop: StopReason | None) -> tuple[str, JSON]:
    if stop in (StopReason.MAX_TOKENS, StopReason.CONTEXT_WINDOW_EXCEEDED):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop in (StopReason.CONTENT_FILTER, StopReason.REFUSAL):
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def decode_stop_reason(status: JSON, details: JSON, has_tool_call: bool) -> StopReason:
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason == "max_output_tokens":
            return StopReason.MAX_TOKENS
        if reason == "content_filter":
            return StopReason.CONTENT_FILTER
    return StopReason.TOOL_USE if has_tool_call else StopReason.END_TURN


def encode_usage(usage: Usage) -> dict[str, JSON]:
    """OpenAI-style usage: ``input_tokens`` includes cached tokens; ``total_tokens`` always present (Codex)."""
    prompt = usage.prompt_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def _count(obj: JSON, key: str) -> int:
    """A token count; anything but a positive integer counts as 0."""
    return max(integer_or(obj_or_empty(obj).get(key)), 0)


def decode_usage(raw: JSON) -> Usage:
    cached = _count(raw.get("input_tokens_details") if isinstance(raw, dict) else None, "cached_tokens")
    written = _count(raw.get("input_tokens_details") if isinstance(raw, dict) else None, "cache_write_tokens")
    return Usage(
        input_tokens=max(_count(raw, "input_tokens") - cached - written, 0),
        output_tokens=_count(raw, "output_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=_count(
            raw.get("output_tokens_details") if isinstance(raw, dict) else None, "reasoning_tokens"
        ),
    )


def response_object(
    request: Request,
    resp_id: str,
    created: int,
    status: str,
    output: list[JSON],
    **fields: JSON,
) -> dict[str, JSON]:
    """The ``response`` object; ``fields`` overrides ``usage``, ``error`` and ``incomplete_details``."""
    choice = encode_tool_choice(request.tool_choice, custom_names(request)) if request.tool_choice else "auto"
    reasoning = request.reasoning
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": fields.get("error"),
        "incomplete_details": fields.get("incomplete_details"),
        "instructions": None,
        "max_output_tokens": request.max_tokens,
        "model": request.model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": reasoning.effort, "summary": reasoning.summary} if reasoning else None,
        "store": request.store is not False,
        "temperature": request.temperature,
        "tool_choice": choice,
        "tools": [],  # not echoed: Codex never reads them and they are large
        "top_p": request.top_p,
        "usage": fields.get("usage"),
        "metadata": request.metadata or {},
    }


def summarize(doc: dict[str, Any]) -> Summary:
    """Model, usage and stop reason of a Responses answer, without its content."""
    output = doc.get("output")
    calls = isinstance(output, list) and any(isinstance(i, dict) and i.get("type") == "function_call" for i in output)
    model = doc.get("model")
    return Summary(
        model if isinstance(model, str) else "",
        decode_stop_reason(doc.get("status"), doc.get("incomplete_details"), calls),
        decode_usage(doc.get("usage")),
    )
