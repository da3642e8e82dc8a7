"""Chat completions (non-streaming): decoding an upstream's, encoding one for the client.

Also what the streams share with them: ``finish_reason`` <-> stop reason, usage both ways, ``chatcmpl-`` ids.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
    Part,
    Reasoning,
    Refusal,
    Request,
    Response,
    StopReason,
    Text,
    ToolCall,
    Usage,
)
from llm_proxy.dialects.base import Summary
from llm_proxy.dialects.jsonread import Invalid, bad_upstream, integer_or
from llm_proxy.dialects.openai_chat.messages import decode_content, decode_tool_call, encode_tool_call
from llm_proxy.dialects.openai_chat.thinking import decode_thinking_block, thinking_fields
from llm_proxy.dialects.openai_chat.wire import NAME
from llm_proxy.errors import RequestError

_STOP_BY_FINISH: dict[str, StopReason] = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
}
_FINISH_BY_STOP: dict[StopReason, str] = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.PAUSE_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_WINDOW_EXCEEDED: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.REFUSAL: "content_filter",
    StopReason.CONTENT_FILTER: "content_filter",
}
_RESPONSE_EXTRA = ("system_fingerprint", "service_tier")


def finish_reason_json(stop: StopReason | None) -> str:
    return _FINISH_BY_STOP.get(stop, "stop") if stop is not None else "stop"


def decode_stop_reason(finish: JSON) -> StopReason | None:
    if not isinstance(finish, str):
        return None
    return _STOP_BY_FINISH.get(finish, StopReason.END_TURN)


def decode_usage(raw: JSON) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = integer_or(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = integer_or(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    return Usage(
        input_tokens=max(integer_or(raw.get("prompt_tokens")) - cached, 0),
        output_tokens=integer_or(raw.get("completion_tokens")),
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def encode_usage(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def decode_response(body: JSON, request: Request) -> Response:
    """A Chat completion from the upstream. Only ``choices[0]`` is kept (the canonical model has one turn)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise bad_upstream("the upstream's chat completion has no choices")
    choice = body["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise bad_upstream("the upstream's chat completion has no message")
    try:
        parts = _response_parts(message)
    except Invalid as exc:
        raise bad_upstream(f"the upstream's chat completion is malformed: {exc.message}") from exc
    except RequestError as exc:  # a carry envelope the proxy cannot read
        raise bad_upstream(f"the upstream's chat completion is malformed: {exc.error.message}") from exc
    created = body.get("created")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or request.model),
        content=parts,
        stop_reason=decode_stop_reason(choice.get("finish_reason")),
        usage=decode_usage(body.get("usage")),
        created=created if isinstance(created, int) else None,
        extra={k: body[k] for k in _RESPONSE_EXTRA if body.get(k) is not None},
        origin=NAME,
    )


def _response_parts(message: dict[str, JSON]) -> tuple[Part, ...]:
    parts: list[Part] = []
    blocks = message.get("thinking_blocks")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(blocks, list) and blocks:
        parts += [decode_thinking_block(b, f"thinking_blocks[{i}]") for i, b in enumerate(blocks)]
    elif isinstance(reasoning, str) and reasoning:
        parts.append(Reasoning(provider="anthropic", text=reasoning))
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(Text(text=content))
    elif isinstance(content, list):
        parts += [p for p in decode_content(content, "content")[0] if isinstance(p, Text)]
    if isinstance(message.get("refusal"), str):
        parts.append(Refusal(text=message["refusal"]))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts += [decode_tool_call(c, f"tool_calls[{i}]") for i, c in enumerate(calls)]
    return tuple(parts)


def chat_id(canonical_id: str) -> str:
    if canonical_id.startswith("chatcmpl-"):
        return canonical_id
    return "chatcmpl-" + (canonical_id or uuid.uuid4().hex)


def encode_response(response: Response, request: Request) -> bytes:
    message: dict[str, JSON] = {"role": "assistant"}
    texts = [p.text for p in response.content if isinstance(p, Text)]
    calls = [p for p in response.content if isinstance(p, ToolCall)]
    refusals = [p.text for p in response.content if isinstance(p, Refusal)]
    message["content"] = "".join(texts) if texts or not calls else None
    message["refusal"] = "".join(refusals) if refusals else None
    if calls:
        message["tool_calls"] = [encode_tool_call(c, False) for c in calls]
    message.update(thinking_fields([p for p in response.content if isinstance(p, Reasoning)]))
    body: dict[str, JSON] = {
        "id": chat_id(response.id),
        "object": "chat.completion",
        "created": response.created if response.created is not None else int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason_json(response.stop_reason),
            }
        ],
        "usage": encode_usage(response.usage),
    }
    if response.origin == NAME:
        body.update(response.extra)
    return orjson.dumps(body)


def summarize(doc: dict[str, Any]) -> Summary:
    """Model, usage and stop reason of a chat completion, without its content."""
    choices = doc.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    model = doc.get("model")
    return Summary(
        model if isinstance(model, str) else "",
        decode_stop_reason(first.get("finish_reason")),
        decode_usage(doc.get("usage")),
    )
