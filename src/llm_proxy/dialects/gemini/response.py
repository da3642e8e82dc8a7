"""GenerateContentResponse: decoding an upstream's, encoding one for the client; finish reasons and usage.

Only the first candidate is read (the proxy refuses ``candidateCount`` > 1). A function call answer finishes
with ``STOP`` in Gemini: it reads as ``tool_use`` when the content holds calls, and ``tool_use`` is written as
``STOP``. ``usageMetadata.promptTokenCount`` includes cached tokens and ``candidatesTokenCount`` excludes
thoughts; canonical usage is the other way round for both (see ``docs/dialects/gemini.md``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from llm_proxy.canonical import JSON, Part, Request, Response, StopReason, ToolCall, Usage
from llm_proxy.dialects.base import Summary
from llm_proxy.dialects.gemini.parts import Ids, decode_parts
from llm_proxy.dialects.gemini.request import content_parts
from llm_proxy.dialects.gemini.wire import NAME, read
from llm_proxy.dialects.jsonread import Invalid, bad_upstream, integer_or, merge_extra, obj_or_empty, rest, string_or

_STOPS: dict[str, StopReason] = {
    "STOP": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "SAFETY": StopReason.CONTENT_FILTER,
    "RECITATION": StopReason.CONTENT_FILTER,
    "BLOCKLIST": StopReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
    "SPII": StopReason.CONTENT_FILTER,
    "IMAGE_SAFETY": StopReason.CONTENT_FILTER,
    "LANGUAGE": StopReason.REFUSAL,
    "MALFORMED_FUNCTION_CALL": StopReason.END_TURN,
    "UNEXPECTED_TOOL_CALL": StopReason.END_TURN,
    "OTHER": StopReason.END_TURN,
}
"""Gemini ``finishReason`` -> canonical stop reason (``STOP`` with calls: ``tool_use``)."""

_FINISH: dict[StopReason, str] = {
    StopReason.END_TURN: "STOP",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.PAUSE_TURN: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.CONTEXT_WINDOW_EXCEEDED: "MAX_TOKENS",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.REFUSAL: "SAFETY",
}

_USAGE_KEYS = ("promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount", "thoughtsTokenCount")


def decode_stop(finish: JSON, has_calls: bool) -> StopReason | None:
    if not isinstance(finish, str):
        return None
    stop = _STOPS.get(finish, StopReason.END_TURN)
    return StopReason.TOOL_USE if stop is StopReason.END_TURN and has_calls and finish == "STOP" else stop


def finish_reason(stop: StopReason | None) -> str:
    return _FINISH.get(stop, "STOP") if stop is not None else "STOP"


def decode_usage(raw: JSON) -> Usage:
    usage = obj_or_empty(raw)
    prompt = integer_or(usage.get("promptTokenCount"))
    cached = integer_or(usage.get("cachedContentTokenCount"))
    thoughts = integer_or(usage.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=integer_or(usage.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def encode_usage(usage: Usage, kept: JSON = None) -> dict[str, JSON]:
    prompt = usage.prompt_tokens
    out: dict[str, JSON] = {"promptTokenCount": prompt}
    if usage.output_tokens - usage.reasoning_tokens:  # zero counts are left out, as proto3 JSON does
        out["candidatesTokenCount"] = usage.output_tokens - usage.reasoning_tokens
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    out["totalTokenCount"] = prompt + usage.output_tokens
    if isinstance(kept, dict):
        merge_extra(out, kept)
        for key, value in kept.items():
            if key == "totalTokenCount":
                out[key] = value  # it may count more than prompt and output (tool-use prompts)
    return out


def _usage_rest(raw: JSON) -> dict[str, JSON]:
    return rest(obj_or_empty(raw), _USAGE_KEYS)


def response_id(value: JSON, seed: str) -> str:
    if isinstance(value, str) and value:
        return value
    return hashlib.sha256(seed.encode()).hexdigest()[:22]


def _decode(body: JSON, request: Request) -> Response:
    doc = read.obj(body, "response")
    candidates = read.array(doc.get("candidates", []), "candidates")
    parts: tuple[Part, ...] = ()
    extra: dict[str, JSON] = rest(doc, ("candidates", "usageMetadata", "modelVersion", "responseId"))
    finish: JSON = None
    if candidates:
        candidate = read.obj(candidates[0], "candidates[0]")
        content = obj_or_empty(candidate.get("content"))
        ids = Ids(scope=string_or(doc.get("responseId")))
        parts = decode_parts(content.get("parts", []), "parts", ids)
        finish = candidate.get("finishReason")
        extra["$candidate"] = rest(candidate, ("content",))
        extra["$content"] = rest(content, ("parts",))
        if "parts" not in content:
            extra["$parts"] = "absent"
    usage_rest = _usage_rest(doc.get("usageMetadata"))
    if usage_rest:
        extra["$usage"] = usage_rest
    has_calls = any(isinstance(p, ToolCall) for p in parts)
    stop = decode_stop(finish, has_calls)
    if stop is None and not candidates and isinstance(doc.get("promptFeedback"), dict):
        stop = StopReason.CONTENT_FILTER  # the prompt was blocked: no candidate at all
    model = doc.get("modelVersion")
    return Response(
        id=response_id(doc.get("responseId"), repr(body)[:200]),
        model=model if isinstance(model, str) and model else request.model,
        content=parts,
        stop_reason=stop,
        usage=decode_usage(doc.get("usageMetadata")),
        extra=extra,
        origin=NAME,
    )


def decode_response(body: JSON, request: Request) -> Response:
    try:
        return _decode(body, request)
    except Invalid as exc:
        raise bad_upstream(f"the upstream answer is malformed: {exc.message}") from None


def encode_response(response: Response, request: Request) -> dict[str, JSON]:
    same = response.origin == NAME
    extra = response.extra if same else {}
    content: dict[str, JSON] = {"parts": content_parts(response.content, same), "role": "model"}
    kept_content = extra.get("$content")
    if isinstance(kept_content, dict):
        content = {**{k: v for k, v in content.items() if k != "role"}, **kept_content}
    if extra.get("$parts") == "absent" and not content.get("parts"):
        del content["parts"]
    candidate: dict[str, JSON] = {"content": content, "finishReason": finish_reason(response.stop_reason)}
    kept = extra.get("$candidate")
    if isinstance(kept, dict):
        candidate.update(kept)  # the wire's own finishReason (RECITATION, ...) and safety ratings
        if "finishReason" not in kept:
            del candidate["finishReason"]
    else:
        candidate["index"] = 0
    doc: dict[str, JSON] = {"candidates": [candidate]}
    doc["usageMetadata"] = encode_usage(response.usage, extra.get("$usage"))
    doc["modelVersion"] = response.model
    doc["responseId"] = response.id
    merge_extra(doc, {k: v for k, v in extra.items() if not k.startswith("$")})
    return doc


def summarize(doc: dict[str, Any]) -> Summary:
    """Model, usage and stop reason of a generateContent answer, without its content."""
    candidates = doc.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else {}
    parts = obj_or_empty(first.get("content")).get("parts")
    has_calls = isinstance(parts, list) and any(isinstance(p, dict) and "functionCall" in p for p in parts)
    stop = decode_stop(first.get("finishReason"), has_calls)
    if stop is None and not candidates and isinstance(doc.get("promptFeedback"), dict):
        stop = StopReason.CONTENT_FILTER  # as ``decode_response``: the prompt was blocked, no candidate at all
    model = doc.get("modelVersion")
    return Summary(model if isinstance(model, str) else "", stop, decode_usage(doc.get("usageMetadata")))
