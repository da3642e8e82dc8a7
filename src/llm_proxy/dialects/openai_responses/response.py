"""Responses (non-streaming): encoding a response for the client, decoding an upstream's."""

from __future__ import annotations

import time

import orjson

from llm_proxy.canonical import (
    JSON,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Request,
    Response,
    Text,
    ToolCall,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.jsonread import Invalid, bad_upstream
from llm_proxy.dialects.openai_errors import RESPONSES_RULES
from llm_proxy.dialects.openai_responses.items import decode_content_part, decode_model_item, item_type
from llm_proxy.dialects.openai_responses.output import (
    call_out,
    custom_tool_input,
    decode_stop_reason,
    decode_usage,
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
from llm_proxy.dialects.openai_responses.wire import NAME, custom_names, read
from llm_proxy.errors import RequestError, UpstreamError


class _OutputBuilder:
    """Canonical response parts -> Responses output items (contiguous text parts share a message item)."""

    def __init__(self, resp_id: str, request: Request, same: bool) -> None:
        self._core = resp_id.removeprefix("resp_")
        self._custom = custom_names(request)
        self._same = same
        self.items: list[JSON] = []
        self._message: list[JSON] | None = None

    def add(self, part: Part) -> None:
        if isinstance(part, Text | Refusal):
            self._add_content(part)
            return
        self._message = None
        n = len(self.items)
        if isinstance(part, Reasoning) and part.provider == "anthropic":
            summary = [part.text] if part.text else []
            self.items.append(reasoning_out(f"rs_{self._core}_{n}", summary, thinking_carry(part)))
        elif isinstance(part, Reasoning):
            content = None if part.content is None else [{"type": "reasoning_text", "text": c} for c in part.content]
            item_id = part.id or f"rs_{self._core}_{n}"
            self.items.append(reasoning_out(item_id, part.summary, part.signature, content))
        elif isinstance(part, ToolCall):
            self.items.append(self._call(part))
        elif isinstance(part, Opaque) and NAME in part.dialects and is_hosted_item(part.raw):
            self.items.append(part.raw)
        else:
            drop(NAME, f"{type(part).__name__} in a response")

    def _add_content(self, part: Text | Refusal) -> None:
        if isinstance(part, Refusal):
            entry: JSON = {"type": "refusal", "refusal": part.text}
        else:
            entry = text_out(part.text, part.extra.get("annotations") if self._same else None)
        if self._message is None:
            self._message = []
            self.items.append(message_out(f"msg_{self._core}_{len(self.items)}", self._message, "completed"))
        self._message.append(entry)

    def _call(self, call: ToolCall) -> JSON:
        custom = call.kind == "custom" or call.name in self._custom
        value = call.arguments if call.kind == "custom" or not custom else custom_tool_input(call.arguments)
        return call_out(call.item_id or f"fc_{call.id}", call.id, call.name, value, custom, "completed")


def encode_response(response: Response, request: Request) -> bytes:
    resp_id = response_id(response.id)
    builder = _OutputBuilder(resp_id, request, response.origin == NAME)
    for part in response.content:
        builder.add(part)
    status, details = status_for(response.stop_reason)
    created = response.created if response.created is not None else int(time.time())
    obj = response_object(
        request, resp_id, created, status, builder.items, usage=encode_usage(response.usage), incomplete_details=details
    )
    return orjson.dumps(obj)


def decode_response(body: JSON, request: Request) -> Response:
    """An upstream's Responses answer; a malformed one raises ``UpstreamError`` (502)."""
    try:
        return _decode_response_doc(read.obj(body, "response"), request)
    except Invalid as exc:
        raise bad_upstream(f"the upstream sent an invalid response: {exc.message}") from exc
    except RequestError as exc:  # a carry envelope the proxy cannot read
        raise bad_upstream(f"the upstream sent an invalid response: {exc.error.message}") from exc


def _decode_response_doc(doc: dict[str, JSON], request: Request) -> Response:
    if doc.get("status") == "failed":
        raise UpstreamError(RESPONSES_RULES.from_object(doc.get("error")))
    parts: list[Part] = []
    for i, raw in enumerate(read.array(doc.get("output", []), "output")):
        parts.extend(_decode_output_item(read.obj(raw, f"output[{i}]"), f"output[{i}]"))
    has_call = any(isinstance(p, ToolCall) for p in parts)
    created = doc.get("created_at")
    model = doc.get("model")
    return Response(
        id=read.opt_string(doc.get("id"), "id") or "",
        model=model if isinstance(model, str) else request.model,
        content=tuple(parts),
        stop_reason=decode_stop_reason(doc.get("status"), doc.get("incomplete_details"), has_call),
        usage=decode_usage(doc.get("usage")),
        created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else None,
        origin=NAME,
    )


def _decode_output_item(item: dict[str, JSON], param: str) -> list[Part]:
    kind = item_type(item, param)
    if kind == "message":
        content = read.array(item.get("content", []), f"{param}.content")
        return [decode_content_part(c, f"{param}.content[{j}]", "assistant") for j, c in enumerate(content)]
    return [decode_model_item(item, kind, param)]
