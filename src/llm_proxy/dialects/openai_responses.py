"""The OpenAI Responses API (``POST /v1/responses``) as a dialect: the wire format of Codex CLI.

A Responses conversation is a flat list of *items* (messages, function calls, function call outputs,
reasoning, hosted-tool calls) rather than a list of turns. Decoding regroups the items into canonical
turns: a run of model-side items (reasoning, function and custom tool calls, hosted-tool items and at
most one assistant message) becomes ONE assistant ``Message``, so that a Claude upstream sees one
assistant turn holding its thinking, text and ``tool_use`` blocks, exactly as it produced them.
Encoding walks the parts of each turn back into items in order, which makes the same-dialect round
trip exact (``docs/dialects/openai_responses.md`` lists the rules and the one exception).

Claude thinking reaches a Responses client as a ``reasoning`` item whose ``encrypted_content`` is a
``claude-thinking`` carry (``llm_proxy.carry``); the client echoes it back and the decoder restores
the original block. Streams follow the event order of the Responses API (``event:`` lines, increasing
``sequence_number``, one output item at a time, ``response.output_item.done`` carrying the complete
item that Codex relies on).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import orjson

from llm_proxy.canonical import (
    JSON,
    BlockKind,
    BlockStart,
    BlockStop,
    ErrorKind,
    Extra,
    Finish,
    HostedTool,
    Image,
    Message,
    MessageStart,
    Opaque,
    Part,
    ProxyError,
    Reasoning,
    ReasoningConfig,
    RedactedThinking,
    Refusal,
    Request,
    Response,
    ResponseFormat,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    Tool,
    ToolArgsDelta,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from llm_proxy.carry import decode_carry, encode_carry, is_carry
from llm_proxy.dialects.base import EncodeOptions, ErrorBody, drop
from llm_proxy.errors import RequestError, UpstreamError, kind_for_status
from llm_proxy.sse import SSEParser, encode_event

NAME = "openai-responses"
FAMILY: frozenset[str] = frozenset({NAME})
"""The ``dialects`` of the ``Opaque`` parts and ``HostedTool`` s this codec creates."""

log = logging.getLogger("llm_proxy.dialects.openai_responses")

# Request.extra key (private, never sent) recording the shape of ``input``: "string" or "absent".
_INPUT_FORM = "_input_form"
# Top-level objects whose unknown keys are kept in Request.extra under the same name and merged back.
_NESTED_EXTRA = ("reasoning", "text")
_ROLES = ("user", "assistant", "system", "developer")
_TOOL_OUTPUTS: dict[str, Literal["function", "custom"]] = {
    "function_call_output": "function",
    "custom_tool_call_output": "custom",
}
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
_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)
_MIN_OUTPUT_TOKENS = 16

# Anthropic thinking budget -> Responses reasoning effort, for clients that give a budget, not an effort.
_EFFORT_BY_BUDGET: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
_EFFORT_ABOVE = "high"


# ---------------------------------------------------------------------------------------------
# Typed access to client JSON: every malformed shape becomes a RequestError naming the field
# ---------------------------------------------------------------------------------------------


def _obj(value: JSON, param: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise RequestError(f"{param} must be an object", param=param)
    return value


def _list(value: JSON, param: str) -> list[JSON]:
    if not isinstance(value, list):
        raise RequestError(f"{param} must be an array", param=param)
    return value


def _str(obj: Mapping[str, JSON], key: str, param: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RequestError(f"{param}.{key} must be a string", param=f"{param}.{key}")
    return value


def _opt_str(obj: Mapping[str, JSON], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{param}.{key} must be a string", param=f"{param}.{key}".lstrip("."))
    return value


def _opt_bool(obj: Mapping[str, JSON], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise RequestError(f"{key} must be a boolean", param=key)
    return value


def _opt_int(obj: Mapping[str, JSON], key: str) -> int | None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(f"{key} must be an integer", param=key)
    return value


def _opt_float(obj: Mapping[str, JSON], key: str) -> float | None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise RequestError(f"{key} must be a number", param=key)
    return value


def _rest(obj: Mapping[str, JSON], known: Iterable[str]) -> Extra:
    """Wire fields without a canonical home: unknown keys, and known keys given as null (to keep the null)."""
    known_set = set(known)
    return {k: v for k, v in obj.items() if k not in known_set or v is None}


def _apply_extra(out: dict[str, JSON], extra: Mapping[str, JSON]) -> dict[str, JSON]:
    """Re-add kept wire fields; a canonical value set since decoding wins over a kept null."""
    for key, value in extra.items():
        out.setdefault(key, value)
    return out


# ---------------------------------------------------------------------------------------------
# Request decoding
# ---------------------------------------------------------------------------------------------

_TOP_LEVEL = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "reasoning",
        "text",
        "temperature",
        "top_p",
        "metadata",
        "store",
        "previous_response_id",
        "stream",
        "user",
    }
)


def _decode_request(body: JSON, path_model: str | None) -> Request:
    doc = _obj(body, "body")
    extra: Extra = _rest(doc, _TOP_LEVEL)
    model = doc.get("model", path_model)
    if not isinstance(model, str) or not model:
        raise RequestError("model is required and must be a string", param="model")
    messages, input_form = _decode_input(doc.get("input"))
    if input_form is not None:
        extra[_INPUT_FORM] = input_form
    if "stream" in doc and doc["stream"] is not True:
        extra["stream"] = doc["stream"]  # canonical stream is a plain bool: keep an explicit false
    instructions = _opt_str(doc, "instructions", "")
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise RequestError("metadata must be an object", param="metadata")
    return Request(
        model=model,
        messages=messages,
        system=(Text(text=instructions),) if instructions is not None else None,
        system_string_form=True,
        tools=_decode_tools(doc.get("tools")),
        tool_choice=_decode_tool_choice(doc.get("tool_choice"), extra),
        parallel_tool_calls=_opt_bool(doc, "parallel_tool_calls"),
        max_tokens=_opt_int(doc, "max_output_tokens"),
        temperature=_opt_float(doc, "temperature"),
        top_p=_opt_float(doc, "top_p"),
        stream=bool(_opt_bool(doc, "stream")),
        reasoning=_decode_reasoning_config(doc.get("reasoning"), extra),
        response_format=_decode_text_config(doc.get("text"), extra),
        user=_opt_str(doc, "user", ""),
        metadata=metadata,
        store=_opt_bool(doc, "store"),
        previous_response_id=_opt_str(doc, "previous_response_id", ""),
        extra=extra,
        origin=NAME,
    )


def _decode_input(raw: JSON) -> tuple[tuple[Message, ...], str | None]:
    if raw is None:
        return (), "absent"
    if isinstance(raw, str):
        return (Message(role="user", content=(Text(text=raw),), string_form=True),), "string"
    return _group_items(_list(raw, "input")), None


@dataclass(slots=True)
class _Run:
    """Consecutive model-side items that become one assistant turn."""

    parts: list[Part] = field(default_factory=list)
    message: Message | None = None

    def to_message(self) -> Message:
        if self.message is None:
            return Message(role="assistant", content=tuple(self.parts))
        return replace(self.message, content=tuple(self.parts))


def _group_items(items: list[JSON]) -> tuple[Message, ...]:
    messages: list[Message] = []
    run: _Run | None = None
    for i, raw in enumerate(items):
        param = f"input[{i}]"
        item = _obj(raw, param)
        kind = _item_type(item, param)
        if kind == "message":
            message = _decode_message(item, param)
            if message.role == "assistant" and message.content:
                if run is not None and run.message is not None:
                    messages.append(run.to_message())  # one assistant message item per turn
                    run = None
                run = run or _Run()
                run.message = message
                run.parts.extend(message.content)
                continue
            standalone = message
        elif kind in _TOOL_OUTPUTS:
            standalone = _decode_tool_output(item, param, _TOOL_OUTPUTS[kind])
        else:
            run = run or _Run()
            run.parts.append(_decode_model_item(item, kind, param))
            continue
        if run is not None:
            messages.append(run.to_message())
            run = None
        messages.append(standalone)
    if run is not None:
        messages.append(run.to_message())
    return tuple(messages)


def _item_type(item: Mapping[str, JSON], param: str) -> str:
    kind = item.get("type")
    if kind is None:
        # EasyInputMessage and ItemReference may omit their type.
        return "message" if "role" in item else "item_reference"
    if not isinstance(kind, str):
        raise RequestError(f"{param}.type must be a string", param=f"{param}.type")
    return kind


def _decode_message(item: dict[str, JSON], param: str) -> Message:
    role = item.get("role")
    if role not in _ROLES:
        raise RequestError(f"{param}.role must be one of {', '.join(_ROLES)}", param=f"{param}.role")
    content = item.get("content")
    extra = _rest(item, ("role", "content"))
    if isinstance(content, str):
        return Message(role=role, content=(Text(text=content),), string_form=True, extra=extra)
    parts = _list(content, f"{param}.content")
    decoded = tuple(_decode_content_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(parts))
    return Message(role=role, content=decoded, extra=extra)


def _default_text_type(role: str) -> str:
    return "output_text" if role == "assistant" else "input_text"


def _decode_content_part(raw: JSON, param: str, role: str) -> Part:
    part = _obj(raw, param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        extra = _rest(part, ("type", "text"))
        if kind != _default_text_type(role):
            extra["type"] = kind
        return Text(text=_str(part, "text", param), extra=extra)
    if kind == "refusal":
        return Refusal(text=_str(part, "refusal", param), extra=_rest(part, ("type", "refusal")))
    if kind == "input_image" and part.get("image_url") is not None:
        return _decode_image(part, param)
    return Opaque(dialects=FAMILY, raw=part)


def _decode_image(part: dict[str, JSON], param: str) -> Image:
    url = _str(part, "image_url", param)
    detail = _opt_str(part, "detail", param)
    extra = _rest(part, ("type", "image_url", "detail"))
    match = _DATA_URL.fullmatch(url)
    if match:
        return Image(media_type=match.group(1), data=match.group(2), detail=detail, extra=extra)
    return Image(url=url, detail=detail, extra=extra)


def _decode_tool_output(item: dict[str, JSON], param: str, kind: Literal["function", "custom"]) -> Message:
    call_id = _str(item, "call_id", param)
    output = item.get("output")
    extra = _rest(item, ("type", "call_id", "output"))
    if isinstance(output, str):
        result = ToolResult(call_id=call_id, content=(Text(text=output),), kind=kind, extra=extra)
    else:
        parts = _list(output, f"{param}.output")
        content = tuple(_decode_output_part(p, f"{param}.output[{j}]") for j, p in enumerate(parts))
        result = ToolResult(call_id=call_id, content=content, string_form=False, kind=kind, extra=extra)
    return Message(role="tool", content=(result,))


def _decode_output_part(raw: JSON, param: str) -> Text | Image | Opaque:
    part = _decode_content_part(raw, param, "user")
    if isinstance(part, Text | Image | Opaque):
        return part
    return Opaque(dialects=FAMILY, raw=raw)


def _decode_model_item(item: dict[str, JSON], kind: str, param: str) -> Part:
    if kind == "reasoning":
        return _decode_reasoning_item(item, param)
    if kind == "function_call":
        return ToolCall(
            id=_str(item, "call_id", param),
            name=_str(item, "name", param),
            arguments=_str(item, "arguments", param),
            item_id=_opt_str(item, "id", param),
            extra=_rest(item, ("type", "call_id", "name", "arguments", "id")),
        )
    if kind == "custom_tool_call":
        return ToolCall(
            id=_str(item, "call_id", param),
            name=_str(item, "name", param),
            arguments=_str(item, "input", param),
            kind="custom",
            item_id=_opt_str(item, "id", param),
            extra=_rest(item, ("type", "call_id", "name", "input", "id")),
        )
    log.debug("kept %s item %s as opaque (responses family only)", kind, param)
    return Opaque(dialects=FAMILY, raw=item)


def _texts(raw: JSON, param: str) -> tuple[str, ...]:
    entries = _list(raw, param)
    return tuple(_str(_obj(e, f"{param}[{j}]"), "text", f"{param}[{j}]") for j, e in enumerate(entries))


def _decode_reasoning_item(item: dict[str, JSON], param: str) -> Part:
    encrypted = _opt_str(item, "encrypted_content", param)
    if is_carry(encrypted):
        assert encrypted is not None  # for mypy: is_carry(None) is False
        return _restore_thinking(encrypted, param)
    content = item.get("content")
    return Reasoning(
        id=_opt_str(item, "id", param),
        summary=_texts(item.get("summary", []), f"{param}.summary"),
        content=None if content is None else _texts(content, f"{param}.content"),
        encrypted_content=encrypted,
        extra=_rest(item, ("type", "id", "summary", "content", "encrypted_content")),
    )


def _restore_thinking(carry: str, param: str) -> Thinking | RedactedThinking:
    """The Claude thinking block this proxy hid in a reasoning item's ``encrypted_content``."""
    fields = decode_carry(carry, "claude-thinking")
    if isinstance(fields.get("r"), str):
        return RedactedThinking(data=fields["r"])
    thinking, signature = fields.get("t"), fields.get("s")
    if not isinstance(thinking, str) or not (signature is None or isinstance(signature, str)):
        raise RequestError("a reasoning item carried by the proxy is not readable", param=f"{param}.encrypted_content")
    return Thinking(thinking=thinking, signature=signature)


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...] | None:
    if raw is None:
        return None
    return tuple(_decode_tool(_obj(t, f"tools[{i}]"), f"tools[{i}]") for i, t in enumerate(_list(raw, "tools")))


def _decode_tool(tool: dict[str, JSON], param: str) -> Tool | HostedTool:
    kind = tool.get("type")
    if kind == "function":
        strict = tool.get("strict")
        return Tool(
            name=_str(tool, "name", param),
            description=_opt_str(tool, "description", param),
            parameters=tool.get("parameters"),
            strict=strict if isinstance(strict, bool) else None,
            extra=_rest(tool, ("type", "name", "description", "parameters", "strict")),
        )
    if kind == "custom":
        # ``format`` (grammar / text) has no canonical field: it stays in extra.
        return Tool(
            name=_str(tool, "name", param),
            description=_opt_str(tool, "description", param),
            kind="custom",
            extra=_rest(tool, ("type", "name", "description")),
        )
    return HostedTool(dialects=FAMILY, raw=tool)


def _decode_tool_choice(raw: JSON, extra: Extra) -> ToolChoice | None:
    if raw in ("none", "auto", "required"):
        return ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") in ("function", "custom") and isinstance(raw.get("name"), str):
        if len(raw) == 2:
            return ToolChoice(mode="tool", name=raw["name"])
    if raw is not None:
        extra["tool_choice"] = raw  # allowed_tools, hosted-tool choices: responses-only
    return None


def _decode_reasoning_config(raw: JSON, extra: Extra) -> ReasoningConfig | None:
    if raw is None:
        return None
    config = _obj(raw, "reasoning")
    rest = _rest(config, ("effort", "summary"))
    if rest:
        extra["reasoning"] = rest
    return ReasoningConfig(
        effort=_opt_str(config, "effort", "reasoning"),
        summary=_opt_str(config, "summary", "reasoning"),
    )


def _decode_text_config(raw: JSON, extra: Extra) -> ResponseFormat | None:
    if raw is None:
        return None
    text = _obj(raw, "text")
    rest = _rest(text, ("format",))
    if rest or "format" not in text:
        extra["text"] = rest
    if text.get("format") is None:
        return None
    fmt = _obj(text["format"], "text.format")
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise RequestError("text.format.type must be text, json_object or json_schema", param="text.format.type")
    strict = fmt.get("strict")
    return ResponseFormat(
        type=kind,
        name=_opt_str(fmt, "name", "text.format"),
        schema=fmt.get("schema"),
        strict=strict if isinstance(strict, bool) else None,
        description=_opt_str(fmt, "description", "text.format"),
    )


# ---------------------------------------------------------------------------------------------
# Request encoding (toward a Responses upstream)
# ---------------------------------------------------------------------------------------------


def _custom_names(request: Request) -> frozenset[str]:
    """Names of the tools the client declared as freeform ``custom`` tools."""
    return frozenset(t.name for t in request.tools or () if isinstance(t, Tool) and t.kind == "custom")


def effort_for_budget(budget_tokens: int) -> str:
    """Responses ``reasoning.effort`` for an Anthropic thinking budget (table in the dialect doc)."""
    for limit, effort in _EFFORT_BY_BUDGET:
        if budget_tokens < limit:
            return effort
    return _EFFORT_ABOVE


def _encode_request(request: Request) -> dict[str, JSON]:
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
        body["tool_choice"] = _encode_tool_choice(request.tool_choice, _custom_names(request))
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
        _apply_extra(body, {k: v for k, v in request.extra.items() if k != _INPUT_FORM})
    return body


def _encode_input_into(body: dict[str, JSON], request: Request, same: bool) -> None:
    form = request.extra.get(_INPUT_FORM) if same else None
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
    return _apply_extra(out, tool.extra) if same else out


def _encode_tool_choice(choice: ToolChoice, custom: frozenset[str]) -> JSON:
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
            return _apply_extra(out, message.extra)
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
        return _apply_extra(out, result.extra) if self.same else out

    def _content_part(self, part: Part, role: str) -> JSON:
        if isinstance(part, Text):
            out: dict[str, JSON] = {"type": _default_text_type(role), "text": part.text}
            if self.same:
                return {**out, **part.extra}  # extra may name a non-default part type, holds annotations
            if role == "assistant":
                out["annotations"] = []
            return out
        if isinstance(part, Refusal):
            refusal: dict[str, JSON] = {"type": "refusal", "refusal": part.text}
            return _apply_extra(refusal, part.extra) if self.same else refusal
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
        return _apply_extra(out, image.extra) if self.same else out


_CONTENT: JSON = object()
"""Sentinel of ``_ItemWriter._item_of``: the part goes inside a message item."""


def _is_content_part(raw: JSON) -> bool:
    """Content parts (``input_*``, ``output_*``, ``refusal``) vs items, for opaque values of this family."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    return isinstance(kind, str) and (kind.startswith(("input_", "output_")) or kind == "refusal")


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
    return _apply_extra(out, call.extra) if same else out


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
    return _apply_extra(out, part.extra) if same else out


# ---------------------------------------------------------------------------------------------
# Responses: output items, stop reasons, usage
# ---------------------------------------------------------------------------------------------


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
    """A ``resp_`` id for the client, derived from the upstream's message id (stable, no randomness)."""
    if upstream_id.startswith("resp_"):
        return upstream_id
    for prefix in ("msg_", "chatcmpl-"):
        if upstream_id.startswith(prefix):
            return "resp_" + upstream_id[len(prefix) :]
    return "resp_" + (upstream_id or uuid.uuid4().hex)


def _thinking_carry(part: Thinking | RedactedThinking) -> str:
    if isinstance(part, RedactedThinking):
        return encode_carry("claude-thinking", {"r": part.data})
    return encode_carry("claude-thinking", {"t": part.thinking, "s": part.signature})


def _reasoning_out(item_id: str, summary: Iterable[str], encrypted: str | None, content: JSON = None) -> JSON:
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


def _message_out(item_id: str, content: list[JSON], status: str) -> JSON:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def _text_out(text: str, annotations: JSON = None) -> JSON:
    return {"type": "output_text", "annotations": annotations if isinstance(annotations, list) else [], "text": text}


def _call_out(item_id: str, call_id: str, name: str, value: str, custom: bool, status: str) -> JSON:
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


def _is_hosted_item(raw: JSON) -> bool:
    return isinstance(raw, dict) and raw.get("type") in _HOSTED_ITEM_TYPES


class _OutputBuilder:
    """Canonical response parts -> Responses output items (contiguous text parts share a message item)."""

    def __init__(self, resp_id: str, request: Request, same: bool) -> None:
        self._core = resp_id.removeprefix("resp_")
        self._custom = _custom_names(request)
        self._same = same
        self.items: list[JSON] = []
        self._message: list[JSON] | None = None

    def add(self, part: Part) -> None:
        if isinstance(part, Text | Refusal):
            self._add_content(part)
            return
        self._message = None
        n = len(self.items)
        if isinstance(part, Thinking | RedactedThinking):
            summary = [part.thinking] if isinstance(part, Thinking) and part.thinking else []
            self.items.append(_reasoning_out(f"rs_{self._core}_{n}", summary, _thinking_carry(part)))
        elif isinstance(part, Reasoning):
            content = None if part.content is None else [{"type": "reasoning_text", "text": c} for c in part.content]
            item_id = part.id or f"rs_{self._core}_{n}"
            self.items.append(_reasoning_out(item_id, part.summary, part.encrypted_content, content))
        elif isinstance(part, ToolCall):
            self.items.append(self._call(part))
        elif isinstance(part, Opaque) and NAME in part.dialects and _is_hosted_item(part.raw):
            self.items.append(part.raw)
        else:
            drop(NAME, f"{type(part).__name__} in a response")

    def _add_content(self, part: Text | Refusal) -> None:
        if isinstance(part, Refusal):
            entry: JSON = {"type": "refusal", "refusal": part.text}
        else:
            entry = _text_out(part.text, part.extra.get("annotations") if self._same else None)
        if self._message is None:
            self._message = []
            self.items.append(_message_out(f"msg_{self._core}_{len(self.items)}", self._message, "completed"))
        self._message.append(entry)

    def _call(self, call: ToolCall) -> JSON:
        custom = call.kind == "custom" or call.name in self._custom
        value = call.arguments if call.kind == "custom" or not custom else custom_tool_input(call.arguments)
        return _call_out(call.item_id or f"fc_{call.id}", call.id, call.name, value, custom, "completed")


def _status_for(stop: StopReason | None) -> tuple[str, JSON]:
    if stop in (StopReason.MAX_TOKENS, StopReason.CONTEXT_WINDOW_EXCEEDED):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop in (StopReason.CONTENT_FILTER, StopReason.REFUSAL):
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _stop_reason(status: JSON, details: JSON, has_tool_call: bool) -> StopReason:
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
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


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


def _response_object(
    request: Request,
    resp_id: str,
    created: int,
    status: str,
    output: list[JSON],
    **fields: JSON,
) -> dict[str, JSON]:
    """The ``response`` object; ``fields`` overrides ``usage``, ``error`` and ``incomplete_details``."""
    choice = _encode_tool_choice(request.tool_choice, _custom_names(request)) if request.tool_choice else "auto"
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


def _encode_response(response: Response, request: Request) -> bytes:
    resp_id = response_id(response.id)
    builder = _OutputBuilder(resp_id, request, response.origin == NAME)
    for part in response.content:
        builder.add(part)
    status, details = _status_for(response.stop_reason)
    created = response.created if response.created is not None else int(time.time())
    obj = _response_object(
        request, resp_id, created, status, builder.items, usage=encode_usage(response.usage), incomplete_details=details
    )
    return orjson.dumps(obj)


def _decode_response(body: JSON, request: Request) -> Response:
    try:
        return _decode_response_doc(_obj(body, "response"), request)
    except RequestError as exc:
        message = f"the upstream sent an invalid response: {exc.error.message}"
        raise UpstreamError(ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message)) from exc


def _decode_response_doc(doc: dict[str, JSON], request: Request) -> Response:
    if doc.get("status") == "failed":
        raise UpstreamError(error_from_object(doc.get("error")))
    parts: list[Part] = []
    for i, raw in enumerate(_list(doc.get("output", []), "output")):
        parts.extend(_decode_output_item(_obj(raw, f"output[{i}]"), f"output[{i}]"))
    has_call = any(isinstance(p, ToolCall) for p in parts)
    created = doc.get("created_at")
    model = doc.get("model")
    return Response(
        id=_opt_str(doc, "id", "") or "",
        model=model if isinstance(model, str) else request.model,
        content=tuple(parts),
        stop_reason=_stop_reason(doc.get("status"), doc.get("incomplete_details"), has_call),
        usage=decode_usage(doc.get("usage")),
        created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else None,
        origin=NAME,
    )


def _decode_output_item(item: dict[str, JSON], param: str) -> list[Part]:
    kind = _item_type(item, param)
    if kind == "message":
        content = _list(item.get("content", []), f"{param}.content")
        return [_decode_content_part(c, f"{param}.content[{j}]", "assistant") for j, c in enumerate(content)]
    return [_decode_model_item(item, kind, param)]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

_KIND_BY_CODE: dict[str, tuple[int, ErrorKind]] = {
    "context_length_exceeded": (400, ErrorKind.CONTEXT_LENGTH),
    "rate_limit_exceeded": (429, ErrorKind.RATE_LIMIT),
    "insufficient_quota": (429, ErrorKind.BILLING),
    "server_is_overloaded": (503, ErrorKind.OVERLOADED),
    "slow_down": (503, ErrorKind.OVERLOADED),
    "invalid_prompt": (400, ErrorKind.INVALID_REQUEST),
    "invalid_api_key": (401, ErrorKind.AUTHENTICATION),
    "model_not_found": (404, ErrorKind.NOT_FOUND),
    "server_error": (500, ErrorKind.API_ERROR),
}
_CONTEXT_PHRASES = ("prompt is too long", "maximum context length", "context window", "context_length_exceeded")
# Codex reads response.error.code of a failed stream: these are the codes it acts on.
_STREAM_CODE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.OVERLOADED: "server_is_overloaded",
    ErrorKind.BILLING: "insufficient_quota",
}
_TYPE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.BILLING: "insufficient_quota",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "server_error",
    ErrorKind.OVERLOADED: "server_error",
    ErrorKind.TIMEOUT: "server_error",
    ErrorKind.UPSTREAM_UNREACHABLE: "server_error",
}
_HTTP_CODE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
}
_STATUS_OVERRIDE: dict[ErrorKind, int] = {
    ErrorKind.OVERLOADED: 503,
    ErrorKind.UPSTREAM_UNREACHABLE: 502,
    ErrorKind.TIMEOUT: 504,
}


def _text(obj: Mapping[str, JSON], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else value if isinstance(value, str) else str(value)


def _error_kind(status: int | None, code: str | None, err_type: str | None, message: str) -> tuple[int, ErrorKind]:
    lowered = message.lower()
    if code != "context_length_exceeded" and any(p in lowered for p in _CONTEXT_PHRASES):
        code = "context_length_exceeded"
    for key in (code, err_type):
        if key in _KIND_BY_CODE:
            guess, kind = _KIND_BY_CODE[key]
            if kind is not ErrorKind.API_ERROR or status is None:
                return (status or guess), kind
    if status is None:
        return 500, ErrorKind.API_ERROR
    return status, kind_for_status(status)


def error_from_object(raw: JSON, status: int | None = None, retry_after: str | None = None) -> ProxyError:
    """A canonical error from an OpenAI error object (HTTP body ``error``, stream ``error``, ``response.error``)."""
    err = raw if isinstance(raw, dict) else {}
    message = _text(err, "message") or (raw if isinstance(raw, str) else None) or "upstream error"
    code, err_type = _text(err, "code"), _text(err, "type")
    final_status, kind = _error_kind(status, code, err_type, message)
    return ProxyError(
        status=final_status,
        kind=kind,
        message=message,
        param=_text(err, "param"),
        code=code,
        retry_after=retry_after,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    retry_after = _header(headers, "retry-after")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return error_from_object(err, status, retry_after)
    if isinstance(err, str):
        message = err
    elif isinstance(doc, dict) and isinstance(doc.get("message"), str):
        message = doc["message"]
    else:
        message = body.decode("utf-8", "replace")[:500] or f"upstream returned HTTP {status}"
    return error_from_object({"message": message}, status, retry_after)


def _encode_error(error: ProxyError) -> ErrorBody:
    status = _STATUS_OVERRIDE.get(error.kind, error.status)
    payload = {
        "error": {
            "message": error.message,
            "type": _TYPE_BY_KIND.get(error.kind, "invalid_request_error"),
            "param": error.param,
            "code": _HTTP_CODE_BY_KIND.get(error.kind, error.code),
        }
    }
    headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
    return ErrorBody(status=status, body=orjson.dumps(payload), headers=headers)


def _cut_error() -> StreamError:
    message = "upstream closed the stream before it finished"
    return StreamError(error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message))


# ---------------------------------------------------------------------------------------------
# Stream decoding (upstream Responses events -> canonical events)
# ---------------------------------------------------------------------------------------------


def _int(obj: Mapping[str, JSON], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _s(obj: Mapping[str, JSON], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _d(obj: Mapping[str, JSON], key: str) -> dict[str, JSON]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _l(obj: Mapping[str, JSON], key: str) -> list[JSON]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


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
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: dict[_Key, _UpBlock] = {}
        self._closed: set[_Key] = set()
        self._has_call = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._parser.feed(data):
            if self._done:
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
        if self._done:
            return []
        self._done = True
        return [_cut_error()]

    # -- helpers ------------------------------------------------------------------------------

    def _start(self, response: Mapping[str, JSON] | None = None) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        resp = response or {}
        created = resp.get("created_at")
        return [
            MessageStart(
                id=_s(resp, "id") or "resp_synthesized",
                model=_s(resp, "model") or self._model,
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
            id=_s(item, "call_id") or _s(item, "id"),
            name=_s(item, "name"),
            tool_kind="custom" if custom else "function",
        )

    # -- handlers -----------------------------------------------------------------------------

    def _on_created(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        return self._start(_d(obj, "response"))

    def _on_item_added(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        item, key = _d(obj, "item"), (_int(obj, "output_index"), -1)
        kind = item.get("type")
        if kind == "reasoning":
            return self._ensure(key, "reasoning", id=_s(item, "id") or None)[0]
        if kind not in ("function_call", "custom_tool_call"):
            return self._start()
        out, block = self._ensure_call(key, item)
        initial = _s(item, "arguments" if kind == "function_call" else "input")
        if initial:
            block.streamed = True
            out.append(ToolArgsDelta(index=block.index, partial_json=initial))
        return out

    def _on_summary_part(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure((_int(obj, "output_index"), -1), "reasoning", id=_s(obj, "item_id") or None)
        if _int(obj, "summary_index") > 0:
            # Summary parts are separate paragraphs; canonical thinking text is one string.
            block.streamed = True
            out.append(ThinkingDelta(index=block.index, text="\n\n"))
        return out

    def _on_summary_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure((_int(obj, "output_index"), -1), "reasoning", id=_s(obj, "item_id") or None)
        block.streamed = True
        if _s(obj, "delta"):
            out.append(ThinkingDelta(index=block.index, text=_s(obj, "delta")))
        return out

    def _on_content_added(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        part = _d(obj, "part")
        kind: BlockKind = "refusal" if part.get("type") == "refusal" else "text"
        out, block = self._ensure((_int(obj, "output_index"), _int(obj, "content_index")), kind)
        initial = _s(part, "refusal" if kind == "refusal" else "text")
        if initial:
            block.streamed = True
            out.append(TextDelta(index=block.index, text=initial))
        return out

    def _on_text_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        kind: BlockKind = "refusal" if obj.get("type") == "response.refusal.delta" else "text"
        out, block = self._ensure((_int(obj, "output_index"), _int(obj, "content_index")), kind)
        block.streamed = True
        if _s(obj, "delta"):
            out.append(TextDelta(index=block.index, text=_s(obj, "delta")))
        return out

    def _on_content_done(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        key = (_int(obj, "output_index"), _int(obj, "content_index"))
        return self._finish_part(key, _d(obj, "part")) if key not in self._closed else []

    def _finish_part(self, key: _Key, part: Mapping[str, JSON]) -> list[StreamEvent]:
        refusal = part.get("type") == "refusal"
        out, block = self._ensure(key, "refusal" if refusal else "text")
        text = _s(part, "refusal" if refusal else "text")
        if text and not block.streamed:
            out.append(TextDelta(index=block.index, text=text))
        return out + self._stop(key)

    def _on_args_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        custom = obj.get("type") == "response.custom_tool_call_input.delta"
        item = {"type": "custom_tool_call" if custom else "function_call", "id": obj.get("item_id")}
        out, block = self._ensure_call((_int(obj, "output_index"), -1), item)
        block.streamed = True
        if _s(obj, "delta"):
            out.append(ToolArgsDelta(index=block.index, partial_json=_s(obj, "delta")))
        return out

    def _on_item_done(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        item, oi = _d(obj, "item"), _int(obj, "output_index")
        kind = item.get("type")
        if kind == "message":
            out: list[StreamEvent] = []
            for ci, part in enumerate(_l(item, "content")):
                if (oi, ci) not in self._closed and isinstance(part, dict):
                    out.extend(self._finish_part((oi, ci), part))
            return out or self._start()
        if kind == "reasoning":
            return self._finish_reasoning(oi, item)
        if kind in ("function_call", "custom_tool_call"):
            out, block = self._ensure_call((oi, -1), item)
            value = _s(item, "arguments" if kind == "function_call" else "input")
            if value and not block.streamed:
                out.append(ToolArgsDelta(index=block.index, partial_json=value))
            return out + self._stop((oi, -1))
        # Hosted-tool items (web search, ...) pass whole, for Responses clients only.
        out, _ = self._ensure((oi, -1), "opaque", raw=item)
        return out + self._stop((oi, -1))

    def _finish_reasoning(self, oi: int, item: Mapping[str, JSON]) -> list[StreamEvent]:
        out, block = self._ensure((oi, -1), "reasoning", id=_s(item, "id") or None)
        summary = [_s(s, "text") for s in _l(item, "summary") if isinstance(s, dict)]
        text = "\n\n".join(summary)
        if text and not block.streamed:
            out.append(ThinkingDelta(index=block.index, text=text))
        encrypted = _s(item, "encrypted_content")  # authoritative only here, per the API docs
        if encrypted:
            out.append(SignatureDelta(index=block.index, signature=encrypted))
        return out + self._stop((oi, -1))

    def _on_terminal(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        response = _d(obj, "response")
        out = self._start(response)
        for key in sorted(self._open, key=lambda k: self._open[k].index):
            out.extend(self._stop(key))
        status = "incomplete" if obj.get("type") == "response.incomplete" else response.get("status")
        stop = _stop_reason(status, response.get("incomplete_details"), self._has_call)
        out.append(Finish(stop_reason=stop, usage=decode_usage(response.get("usage"))))
        self._done = True
        return out

    def _on_failed(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        self._done = True
        error = _d(obj, "response").get("error") or {"message": "the upstream response failed"}
        return [StreamError(error=error_from_object(error))]

    def _on_error(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        self._done = True
        inner = obj.get("error")
        return [StreamError(error=error_from_object(inner if isinstance(inner, dict) else obj))]

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


# ---------------------------------------------------------------------------------------------
# Stream encoding (canonical events -> Responses events for the client)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _DownBlock:
    kind: str
    output_index: int
    item_id: str
    content_index: int = 0
    chunks: list[str] = field(default_factory=list)
    """Text of the content part, the summary part being written, or the call's arguments."""
    thinking: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    part_open: bool = False
    signature: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    custom: bool = False
    unwrap: bool = False
    """A function-style call of a client-declared custom tool: send ``custom_tool_input`` of the JSON at the end."""
    data: str | None = None
    raw: JSON = None


@dataclass(slots=True)
class _OpenMessage:
    output_index: int
    item_id: str
    parts: list[JSON] = field(default_factory=list)


_REASONING_KINDS = ("reasoning", "thinking", "redacted_thinking")


class ResponsesStreamEncoder:
    """Canonical events -> the Responses event stream (``event:`` + ``data:``, increasing ``sequence_number``)."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._request = request
        self._custom = _custom_names(request)
        self._seq = 0
        self._resp_id = "resp_synthesized"
        self._created = 0
        self._started = False
        self._done = False
        self._start_usage = Usage()
        self._items: list[JSON] = []
        """Output items by output index; None until the item is done."""
        self._blocks: dict[int, _DownBlock] = {}
        self._message: _OpenMessage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        out: list[bytes] = []
        if isinstance(event, MessageStart):
            self._start(out, event)
            return b"".join(out)
        if not self._started:
            self._start(out, None)
        if isinstance(event, StreamError):
            self._fail(out, event.error)
        elif isinstance(event, BlockStart):
            self._block_start(out, event)
        elif isinstance(event, BlockStop):
            self._block_stop(out, event.index)
        elif isinstance(event, Finish):
            self._finish(out, event)
        else:
            self._delta(out, event)
        return b"".join(out)

    def close(self) -> bytes:
        return b""

    # -- writing ------------------------------------------------------------------------------

    def _emit(self, out: list[bytes], kind: str, fields: dict[str, JSON]) -> None:
        payload = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        out.append(encode_event(orjson.dumps(payload), kind))

    def _response(self, status: str, **fields: JSON) -> dict[str, JSON]:
        output = [item for item in self._items if item is not None]
        return _response_object(self._request, self._resp_id, self._created, status, output, **fields)

    def _start(self, out: list[bytes], event: MessageStart | None) -> None:
        if self._started:
            return
        self._started = True
        if event is not None:
            self._resp_id = response_id(event.id)
            self._start_usage = event.usage
        created = event.created if event is not None else None
        self._created = created if created is not None else int(time.time())
        self._emit(out, "response.created", {"response": self._response("in_progress")})
        self._emit(out, "response.in_progress", {"response": self._response("in_progress")})

    def _new_item(self) -> int:
        self._items.append(None)
        return len(self._items) - 1

    # -- blocks -------------------------------------------------------------------------------

    def _block_start(self, out: list[bytes], event: BlockStart) -> None:
        if event.kind in ("text", "refusal"):
            self._content_start(out, event)
            return
        if event.kind == "opaque" and not _is_hosted_item(event.raw):
            drop(NAME, "opaque stream block of another vendor")
            return
        self._close_message(out)
        oi = self._new_item()
        core = self._resp_id.removeprefix("resp_")
        block: _DownBlock
        if event.kind in _REASONING_KINDS:
            item_id = event.id if event.kind == "reasoning" and event.id else f"rs_{core}_{oi}"
            block = _DownBlock(kind=event.kind, output_index=oi, item_id=item_id, data=event.data)
            item = _reasoning_out(item_id, [], None)
        elif event.kind == "tool_call":
            block = self._call_block(event, oi, core)
            item = _call_out(block.item_id, block.call_id, block.name, "", block.custom, "in_progress")
        else:
            block = _DownBlock(kind="opaque", output_index=oi, item_id="", raw=event.raw)
            item = event.raw
        self._blocks[event.index] = block
        self._emit(out, "response.output_item.added", {"output_index": oi, "item": item})

    def _call_block(self, event: BlockStart, oi: int, core: str) -> _DownBlock:
        call_id = event.id or f"call_{core}_{oi}"
        name = event.name or ""
        custom = event.tool_kind == "custom" or name in self._custom
        return _DownBlock(
            kind="call",
            output_index=oi,
            item_id=f"fc_{call_id}",
            call_id=call_id,
            name=name,
            custom=custom,
            unwrap=custom and event.tool_kind != "custom",
        )

    def _content_start(self, out: list[bytes], event: BlockStart) -> None:
        message = self._message
        if message is None:
            oi = self._new_item()
            message = _OpenMessage(output_index=oi, item_id=f"msg_{self._resp_id.removeprefix('resp_')}_{oi}")
            self._message = message
            item = _message_out(message.item_id, [], "in_progress")
            self._emit(out, "response.output_item.added", {"output_index": oi, "item": item})
        ci = len(message.parts)
        message.parts.append(None)
        part = {"type": "refusal", "refusal": ""} if event.kind == "refusal" else _text_out("")
        block = _DownBlock(
            kind=event.kind, output_index=message.output_index, item_id=message.item_id, content_index=ci
        )
        self._blocks[event.index] = block
        self._emit(out, "response.content_part.added", {**self._where(block), "part": part})

    def _where(self, block: _DownBlock, content: bool = True) -> dict[str, JSON]:
        where: dict[str, JSON] = {"item_id": block.item_id, "output_index": block.output_index}
        if content:
            where["content_index"] = block.content_index
        return where

    def _close_message(self, out: list[bytes]) -> None:
        message = self._message
        if message is None:
            return
        self._message = None
        item = _message_out(message.item_id, [p for p in message.parts if p is not None], "completed")
        self._items[message.output_index] = item
        self._emit(out, "response.output_item.done", {"output_index": message.output_index, "item": item})

    def _delta(self, out: list[bytes], event: StreamEvent) -> None:
        block = self._blocks.get(getattr(event, "index", -1))
        if block is None:
            return
        if isinstance(event, TextDelta) and block.kind in ("text", "refusal"):
            block.chunks.append(event.text)
            if block.kind == "refusal":
                self._emit(out, "response.refusal.delta", {**self._where(block), "delta": event.text})
            else:
                self._emit(
                    out, "response.output_text.delta", {**self._where(block), "delta": event.text, "logprobs": []}
                )
        elif isinstance(event, ThinkingDelta) and block.kind in _REASONING_KINDS:
            self._thinking_delta(out, block, event.text)
        elif isinstance(event, SignatureDelta):
            block.signature.append(event.signature)
        elif isinstance(event, ToolArgsDelta) and block.kind == "call":
            block.chunks.append(event.partial_json)
            if block.unwrap or not event.partial_json:
                return  # the custom input is only known once the whole JSON has arrived
            kind = "response.custom_tool_call_input.delta" if block.custom else "response.function_call_arguments.delta"
            self._emit(out, kind, {**self._where(block, False), "delta": event.partial_json})

    def _thinking_delta(self, out: list[bytes], block: _DownBlock, text: str) -> None:
        if block.kind == "reasoning" and text == "\n\n" and block.part_open:
            self._close_summary(out, block)  # the decoder's separator between two summary parts
            return
        if not text:
            return
        block.thinking.append(text)
        if not block.part_open:
            block.part_open = True
            part = {"type": "summary_text", "text": ""}
            fields = {**self._where(block, False), "summary_index": len(block.summaries), "part": part}
            self._emit(out, "response.reasoning_summary_part.added", fields)
        block.chunks.append(text)
        fields = {**self._where(block, False), "summary_index": len(block.summaries), "delta": text}
        self._emit(out, "response.reasoning_summary_text.delta", fields)

    def _close_summary(self, out: list[bytes], block: _DownBlock) -> None:
        text = "".join(block.chunks)
        where = {**self._where(block, False), "summary_index": len(block.summaries)}
        self._emit(out, "response.reasoning_summary_text.done", {**where, "text": text})
        self._emit(
            out, "response.reasoning_summary_part.done", {**where, "part": {"type": "summary_text", "text": text}}
        )
        block.summaries.append(text)
        block.chunks = []
        block.part_open = False

    def _block_stop(self, out: list[bytes], index: int) -> None:
        block = self._blocks.pop(index, None)
        if block is None:
            return
        if block.kind in ("text", "refusal"):
            self._content_stop(out, block)
            return
        if block.kind in _REASONING_KINDS:
            item = self._reasoning_stop(out, block)
        elif block.kind == "call":
            item = self._call_stop(out, block)
        else:
            item = block.raw
        self._items[block.output_index] = item
        self._emit(out, "response.output_item.done", {"output_index": block.output_index, "item": item})

    def _content_stop(self, out: list[bytes], block: _DownBlock) -> None:
        text = "".join(block.chunks)
        part: JSON
        if block.kind == "refusal":
            part = {"type": "refusal", "refusal": text}
            self._emit(out, "response.refusal.done", {**self._where(block), "refusal": text})
        else:
            part = _text_out(text)
            self._emit(out, "response.output_text.done", {**self._where(block), "text": text, "logprobs": []})
        self._emit(out, "response.content_part.done", {**self._where(block), "part": part})
        if self._message is not None and self._message.item_id == block.item_id:
            self._message.parts[block.content_index] = part

    def _reasoning_stop(self, out: list[bytes], block: _DownBlock) -> JSON:
        if block.part_open:
            self._close_summary(out, block)
        signature = "".join(block.signature) or None
        encrypted: str | None
        if block.kind == "thinking":
            encrypted = _thinking_carry(Thinking(thinking="".join(block.thinking), signature=signature))
        elif block.kind == "redacted_thinking":
            encrypted = _thinking_carry(RedactedThinking(data=block.data or ""))
        else:
            encrypted = signature  # a Responses upstream's own encrypted_content
        return _reasoning_out(block.item_id, block.summaries, encrypted)

    def _call_stop(self, out: list[bytes], block: _DownBlock) -> JSON:
        value = "".join(block.chunks)
        if block.unwrap:
            value = custom_tool_input(value)
            if value:
                self._emit(out, "response.custom_tool_call_input.delta", {**self._where(block, False), "delta": value})
        if block.custom:
            self._emit(out, "response.custom_tool_call_input.done", {**self._where(block, False), "input": value})
        else:
            fields = {**self._where(block, False), "name": block.name, "arguments": value}
            self._emit(out, "response.function_call_arguments.done", fields)
        return _call_out(block.item_id, block.call_id, block.name, value, block.custom, "completed")

    # -- the end ------------------------------------------------------------------------------

    def _finish(self, out: list[bytes], event: Finish) -> None:
        for index in sorted(self._blocks):
            self._block_stop(out, index)  # tolerate a block the upstream never stopped
        self._close_message(out)
        usage = _merge_usage(self._start_usage, event.usage)
        status, details = _status_for(event.stop_reason)
        response = self._response(status, usage=encode_usage(usage), incomplete_details=details)
        self._emit(out, f"response.{status}", {"response": response})
        self._done = True

    def _fail(self, out: list[bytes], error: ProxyError) -> None:
        code = _STREAM_CODE_BY_KIND.get(error.kind, "server_error")
        response = self._response("failed", error={"code": code, "message": error.message})
        self._emit(out, "response.failed", {"response": response})
        self._done = True


def _merge_usage(start: Usage, final: Usage) -> Usage:
    """Final usage, with counts only the stream's start reported (e.g. input tokens) filled in."""
    return Usage(
        input_tokens=final.input_tokens or start.input_tokens,
        output_tokens=final.output_tokens or start.output_tokens,
        cache_read_tokens=final.cache_read_tokens or start.cache_read_tokens,
        cache_write_tokens=final.cache_write_tokens or start.cache_write_tokens,
        reasoning_tokens=final.reasoning_tokens or start.reasoning_tokens,
    )


# ---------------------------------------------------------------------------------------------
# The dialect object
# ---------------------------------------------------------------------------------------------


class ResponsesDialect:
    """``openai-responses``: see the module docstring and ``docs/dialects/openai_responses.md``."""

    name = NAME

    def decode_request(self, body: JSON, *, path_model: str | None = None) -> Request:
        return _decode_request(body, path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return _encode_response(response, request)

    def stream_encoder(self, request: Request) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return _encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return _encode_request(request)

    def upstream_path(self, request: Request) -> str:
        return "/v1/responses"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return _decode_response(body, request)

    def stream_decoder(self, request: Request) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return _decode_error(status, body, headers)


DIALECT = ResponsesDialect()
