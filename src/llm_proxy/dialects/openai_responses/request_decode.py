"""Decoding a Responses request (client side): items regrouped into canonical turns.

A run of model-side input items (reasoning, function and custom tool calls, hosted-tool items and at
most one assistant message) becomes ONE assistant ``Message``; tool outputs become tool messages; a
reasoning item whose ``encrypted_content`` is a ``claude-thinking`` carry becomes the original Claude
thinking block again. The item readers are shared with the decoding of upstream responses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from llm_proxy.canonical import (
    JSON,
    Extra,
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
from llm_proxy.dialects.openai_responses.wire import (
    _INPUT_FORM,
    FAMILY,
    NAME,
    _default_text_type,
    _list,
    _obj,
    _opt_bool,
    _opt_float,
    _opt_int,
    _opt_str,
    _rest,
    _str,
    is_content_part_type,
    log,
)
from llm_proxy.errors import RequestError
from llm_proxy.framing.carry import decode_carry, is_carry

_ROLES = ("user", "assistant", "system", "developer")
_TOOL_OUTPUTS: dict[str, Literal["function", "custom"]] = {
    "function_call_output": "function",
    "custom_tool_call_output": "custom",
}

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)

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
        if is_content_part_type(kind):
            raise RequestError(
                f"{param}.type {kind!r} is a content part, not an input item: put it in a message's content",
                param=f"{param}.type",
            )
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
    decoded = tuple(_decode_message_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(parts))
    return Message(role=role, content=decoded, extra=extra)


def _decode_message_part(raw: JSON, param: str, role: str) -> Part:
    """A client's content part. Its type must say it is one: an unknown part is kept as it is, and re-encoding
    files kept values by type, so a part typed like an item would leave its message."""
    part = _obj(raw, param)
    if not is_content_part_type(part.get("type")):
        raise RequestError(
            f"{param}.type must be a content part type (input_text, input_image, input_file, output_text, refusal)",
            param=f"{param}.type",
        )
    return _decode_content_part(part, param, role)


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
