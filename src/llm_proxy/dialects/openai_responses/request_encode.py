"""Encoding a canonical ``Request`` for a Responses upstream: turns walked back into input items.

The parts of each turn become items in order (consecutive content parts share one message item), so a
Responses request re-encodes to an equal body. A request of another origin also asks for encrypted
reasoning (the proxy is stateless), sets ``store: false`` and drops what Responses has no place for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llm_proxy.canonical import (
    JSON,
    HostedTool,
    Image,
    Message,
    Opaque,
    Part,
    Reasoning,
    ReasoningConfig,
    RedactedThinking,
    Refusal,
    Request,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.jsonread import merge_extra
from llm_proxy.dialects.openai_responses.wire import (
    INPUT_FORM,
    NAME,
    custom_names,
    default_text_type,
    is_content_part_type,
)
from llm_proxy.errors import RequestError

# Top-level objects whose unknown keys are kept in Request.extra under the same name and merged back.
_NESTED_EXTRA = ("reasoning", "text")

_MIN_OUTPUT_TOKENS = 16

# Anthropic thinking budget -> Responses reasoning effort, for clients that give a budget, not an effort.
_EFFORT_BY_BUDGET: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
_EFFORT_ABOVE = "high"


def effort_for_budget(budget_tokens: int) -> str:
    """Responses ``reasoning.effort`` for an Anthropic thinking budget (table in the dialect doc)."""
    for limit, effort in _EFFORT_BY_BUDGET:
        if budget_tokens <= limit:
            return effort
    return _EFFORT_ABOVE


def encode_request(request: Request) -> dict[str, JSON]:
    same = request.origin == NAME
    if request.n is not None and request.n > 1:
        raise RequestError("n > 1 is not supported by the Responses API", param="n")
    body: dict[str, JSON] = {"model": request.model}
    _encode_input_into(body, request, same)
    if request.system is not None:
        body["instructions"] = "\n\n".join(t.text for t in request.system)
    if request.tools is not None:
        body["tools"] = _encode_tools(request.tools, same)
    if request.tool_choice is not None:
        body["tool_choice"] = encode_tool_choice(request.tool_choice, custom_names(request))
    _encode_scalars_into(body, request, same)
    reasoning = _encode_reasoning(request.reasoning, same)
    if reasoning is not None:
        body["reasoning"] = reasoning
        if not same and reasoning.get("effort") != "none":
            # The proxy is stateless: ask for the encrypted reasoning so it can ride in the client's history.
            reasoning.setdefault("summary", "auto")
            body["include"] = ["reasoning.encrypted_content"]
    if request.response_format is not None:
        body["text"] = {"format": _encode_format(request.response_format)}
    _encode_dropped(request, same)
    if same:
        _merge_nested(body, request.extra)
        merge_extra(body, {k: v for k, v in request.extra.items() if k != INPUT_FORM})
    return body


def _encode_input_into(body: dict[str, JSON], request: Request, same: bool) -> None:
    form = request.extra.get(INPUT_FORM) if same else None
    if form == "absent" and not request.messages:
        return
    if form == "string" and len(request.messages) == 1:
        only = request.messages[0]
        if only.role == "user" and only.string_form and len(only.content) == 1 and isinstance(only.content[0], Text):
            body["input"] = only.content[0].text
            return
    body["input"] = _encode_messages(request.messages, same)


def _encode_scalars_into(body: dict[str, JSON], request: Request, same: bool) -> None:
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens if same else max(request.max_tokens, _MIN_OUTPUT_TOKENS)
    scalars = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "metadata": request.metadata,
        "user": request.user,
        "previous_response_id": request.previous_response_id,
    }
    body.update({k: v for k, v in scalars.items() if v is not None})
    if request.store is not None:
        body["store"] = request.store
    elif not same:
        body["store"] = False  # the proxy keeps no server-side conversation state
    if request.stream:
        body["stream"] = True  # an explicit false is kept in extra by the decoder


def _encode_dropped(request: Request, same: bool) -> None:
    if same:
        return
    for name, value in (("stop", request.stop), ("top_k", request.top_k), ("seed", request.seed)):
        if value is not None:
            drop(NAME, name)


def _merge_nested(body: dict[str, JSON], extra: Mapping[str, JSON]) -> None:
    for key in _NESTED_EXTRA:
        kept = extra.get(key)
        if isinstance(kept, dict) and isinstance(body.get(key), dict):
            body[key] = {**kept, **body[key]}


def _encode_reasoning(config: ReasoningConfig | None, same: bool) -> dict[str, JSON] | None:
    if config is None or config.mode == "disabled":
        return None
    out: dict[str, JSON] = {}
    if config.effort is not None:
        out["effort"] = config.effort
    elif config.budget_tokens is not None:
        out["effort"] = effort_for_budget(config.budget_tokens)
    if config.summary is not None and (same or config.summary in ("auto", "concise", "detailed")):
        out["summary"] = config.summary
    return out


def _encode_format(fmt: ResponseFormat) -> dict[str, JSON]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    out: dict[str, JSON] = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema}
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    if fmt.description is not None:
        out["description"] = fmt.description
    return out


def _encode_tools(tools: Iterable[Tool | HostedTool], same: bool) -> list[JSON]:
    out: list[JSON] = []
    for tool in tools:
        if isinstance(tool, HostedTool):
            if NAME in tool.dialects:
                out.append(tool.raw)
            else:
                drop(NAME, "hosted tool of another vendor")
            continue
        out.append(_encode_tool(tool, same))
    return out


def _encode_tool(tool: Tool, same: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {"type": tool.kind, "name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if tool.kind == "function":
        if same:
            if tool.parameters is not None:
                out["parameters"] = tool.parameters
            if tool.strict is not None:
                out["strict"] = tool.strict
        else:
            # Responses defaults strict to true, which rejects most hand-written schemas: be explicit.
            out["parameters"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
            out["strict"] = bool(tool.strict)
    return merge_extra(out, tool.extra) if same else out


def encode_tool_choice(choice: ToolChoice, custom: frozenset[str]) -> JSON:
    if choice.mode != "tool":
        return choice.mode
    return {"type": "custom" if choice.name in custom else "function", "name": choice.name}


class _ItemWriter:
    """Turns canonical turns into input items; consecutive content of one turn becomes one message item."""

    def __init__(self, same: bool) -> None:
        self.same = same
        self.items: list[JSON] = []
        self._extra_used = False

    def message(self, message: Message) -> None:
        self._extra_used = False
        pending: list[Part] = []
        for part in message.content:
            item = self._item_of(part)
            if item is _CONTENT:
                pending.append(part)
                continue
            self._flush(message, pending)
            pending = []
            if item is not None:
                self.items.append(item)
        self._flush(message, pending)
        if not message.content:
            self.items.append(self._message_item(message, "" if message.string_form else []))

    def _flush(self, message: Message, parts: list[Part]) -> None:
        if not parts:
            return
        content: JSON
        if message.string_form and len(parts) == 1 and isinstance(parts[0], Text):
            content = parts[0].text
        else:
            content = [c for c in (self._content_part(p, message.role) for p in parts) if c is not None]
            if not content:
                return
        self.items.append(self._message_item(message, content))

    def _message_item(self, message: Message, content: JSON) -> JSON:
        out: dict[str, JSON] = {"role": message.role, "content": content}
        if self.same and not self._extra_used:
            # The item's own fields (type, id, status, phase) go on the first message item of the turn.
            self._extra_used = True
            return merge_extra(out, message.extra)
        return {"type": "message", **out}

    def _item_of(self, part: Part) -> JSON:
        """The item a part becomes on its own, ``_CONTENT`` if it belongs in a message, None if dropped."""
        if isinstance(part, ToolCall):
            return _encode_tool_call(part, self.same)
        if isinstance(part, ToolResult):
            return self._tool_result(part)
        if isinstance(part, Reasoning):
            return _encode_reasoning_item(part, self.same)
        if isinstance(part, Thinking | RedactedThinking):
            # A Responses upstream cannot verify Claude's signatures: the block cannot go there.
            drop(NAME, "claude thinking block")
            return None
        if isinstance(part, Opaque) and NAME in part.dialects and not _is_content_part(part.raw):
            # Opaque content parts stay in the message; the request decoder guarantees this test tells them apart.
            return part.raw
        return _CONTENT

    def _tool_result(self, result: ToolResult) -> JSON:
        kind = "custom_tool_call_output" if result.kind == "custom" else "function_call_output"
        if result.is_error and not self.same:
            drop(NAME, "tool_result.is_error")
        output: JSON
        if result.string_form and all(isinstance(p, Text) for p in result.content):
            output = "".join(p.text for p in result.content if isinstance(p, Text))
        else:
            output = [c for c in (self._content_part(p, "user") for p in result.content) if c is not None]
        out: dict[str, JSON] = {"type": kind, "call_id": result.call_id, "output": output}
        return merge_extra(out, result.extra) if self.same else out

    def _content_part(self, part: Part, role: str) -> JSON:
        if isinstance(part, Text):
            out: dict[str, JSON] = {"type": default_text_type(role), "text": part.text}
            if self.same:
                return {**out, **part.extra}  # extra may name a non-default part type, holds annotations
            if role == "assistant":
                out["annotations"] = []
            return out
        if isinstance(part, Refusal):
            refusal: dict[str, JSON] = {"type": "refusal", "refusal": part.text}
            return merge_extra(refusal, part.extra) if self.same else refusal
        if isinstance(part, Image):
            return self._image(part, role)
        if isinstance(part, Opaque) and NAME in part.dialects:
            return part.raw
        drop(NAME, f"{type(part).__name__} content in a {role} message")
        return None

    def _image(self, image: Image, role: str) -> JSON:
        if role == "assistant" and not self.same:
            drop(NAME, "image in an assistant message")
            return None
        url = image.url if image.data is None else f"data:{image.media_type or 'image/png'};base64,{image.data}"
        out: dict[str, JSON] = {"type": "input_image", "image_url": url}
        if image.detail is not None or not self.same:
            out["detail"] = image.detail or "auto"
        return merge_extra(out, image.extra) if self.same else out


_CONTENT: JSON = object()
"""Sentinel of ``_ItemWriter._item_of``: the part goes inside a message item."""


def _is_content_part(raw: JSON) -> bool:
    """Content parts vs items, for opaque values of this family."""
    return isinstance(raw, dict) and is_content_part_type(raw.get("type"))


def _encode_messages(messages: Iterable[Message], same: bool) -> list[JSON]:
    writer = _ItemWriter(same)
    for message in messages:
        writer.message(message)
    return writer.items


def _encode_tool_call(call: ToolCall, same: bool) -> dict[str, JSON]:
    out: dict[str, JSON]
    if call.kind == "custom":
        out = {"type": "custom_tool_call", "call_id": call.id, "name": call.name, "input": call.arguments}
    else:
        out = {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
    if call.item_id is not None:
        out["id"] = call.item_id
    return merge_extra(out, call.extra) if same else out


def _encode_reasoning_item(part: Reasoning, same: bool) -> JSON:
    if part.id is None and not same:
        drop(NAME, "reasoning item without id")
        return None
    out: dict[str, JSON] = {"type": "reasoning"}
    if part.id is not None:
        out["id"] = part.id
    out["summary"] = [{"type": "summary_text", "text": s} for s in part.summary]
    if part.content is not None:
        out["content"] = [{"type": "reasoning_text", "text": c} for c in part.content]
    if part.encrypted_content is not None:
        out["encrypted_content"] = part.encrypted_content
    return merge_extra(out, part.extra) if same else out
