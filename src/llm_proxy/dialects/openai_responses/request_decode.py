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
from llm_proxy.dialects.jsonread import Invalid, rest
from llm_proxy.dialects.openai_responses.wire import (
    FAMILY,
    INPUT_FORM,
    NAME,
    default_text_type,
    is_content_part_type,
    log,
    read,
)
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


def decode_request(body: JSON, path_model: str | None) -> Request:
    """A client's Responses request; a malformed one raises ``RequestError`` naming the field."""
    try:
        return _decode_request(read.obj(body, "body"), path_model)
    except Invalid as exc:
        raise exc.request_error() from None


def _decode_request(doc: dict[str, JSON], path_model: str | None) -> Request:
    extra: Extra = rest(doc, _TOP_LEVEL)
    model = doc.get("model", path_model)
    if not isinstance(model, str) or not model:
        raise read.fail("model", "is required and must be a string")
    messages, input_form = _decode_input(doc.get("input"))
    if input_form is not None:
        extra[INPUT_FORM] = input_form
    if "stream" in doc and doc["stream"] is not True:
        extra["stream"] = doc["stream"]  # canonical stream is a plain bool: keep an explicit false
    instructions = read.opt_string(doc.get("instructions"), "instructions")
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise read.fail("metadata", "must be an object")
    return Request(
        model=model,
        messages=messages,
        system=(Text(text=instructions),) if instructions is not None else None,
        system_string_form=True,
        tools=_decode_tools(doc.get("tools")),
        tool_choice=_decode_tool_choice(doc.get("tool_choice"), extra),
        parallel_tool_calls=read.opt_boolean(doc.get("parallel_tool_calls"), "parallel_tool_calls"),
        max_tokens=read.opt_integer(doc.get("max_output_tokens"), "max_output_tokens"),
        temperature=read.opt_number(doc.get("temperature"), "temperature"),
        top_p=read.opt_number(doc.get("top_p"), "top_p"),
        stream=bool(read.opt_boolean(doc.get("stream"), "stream")),
        reasoning=_decode_reasoning_config(doc.get("reasoning"), extra),
        response_format=_decode_text_config(doc.get("text"), extra),
        user=read.opt_string(doc.get("user"), "user"),
        metadata=metadata,
        store=read.opt_boolean(doc.get("store"), "store"),
        previous_response_id=read.opt_string(doc.get("previous_response_id"), "previous_response_id"),
        extra=extra,
        origin=NAME,
    )


def _decode_input(raw: JSON) -> tuple[tuple[Message, ...], str | None]:
    if raw is None:
        return (), "absent"
    if isinstance(raw, str):
        return (Message(role="user", content=(Text(text=raw),), string_form=True),), "string"
    return _group_items(read.array(raw, "input")), None


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
        item = read.obj(raw, param)
        kind = item_type(item, param)
        if is_content_part_type(kind):
            raise read.fail(
                f"{param}.type", f"{kind!r} is a content part, not an input item: put it in a message's content"
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
            run.parts.append(decode_model_item(item, kind, param))
            continue
        if run is not None:
            messages.append(run.to_message())
            run = None
        messages.append(standalone)
    if run is not None:
        messages.append(run.to_message())
    return tuple(messages)


def item_type(item: Mapping[str, JSON], param: str) -> str:
    kind = item.get("type")
    if kind is None:
        # EasyInputMessage and ItemReference may omit their type.
        return "message" if "role" in item else "item_reference"
    if not isinstance(kind, str):
        raise read.fail(f"{param}.type", "must be a string")
    return kind


def _decode_message(item: dict[str, JSON], param: str) -> Message:
    role = item.get("role")
    if role not in _ROLES:
        raise read.fail(f"{param}.role", f"must be one of {', '.join(_ROLES)}")
    content = item.get("content")
    extra = rest(item, ("role", "content"))
    if isinstance(content, str):
        return Message(role=role, content=(Text(text=content),), string_form=True, extra=extra)
    parts = read.array(content, f"{param}.content")
    decoded = tuple(_decode_message_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(parts))
    return Message(role=role, content=decoded, extra=extra)


def _decode_message_part(raw: JSON, param: str, role: str) -> Part:
    """A client's content part. Its type must say it is one: an unknown part is kept as it is, and re-encoding
    files kept values by type, so a part typed like an item would leave its message."""
    part = read.obj(raw, param)
    if not is_content_part_type(part.get("type")):
        raise read.fail(
            f"{param}.type", "must be a content part type (input_text, input_image, input_file, output_text, refusal)"
        )
    return decode_content_part(part, param, role)


def decode_content_part(raw: JSON, param: str, role: str) -> Part:
    part = read.obj(raw, param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        extra = rest(part, ("type", "text"))
        if kind != default_text_type(role):
            extra["type"] = kind
        return Text(text=read.string(part.get("text"), f"{param}.text"), extra=extra)
    if kind == "refusal":
        return Refusal(text=read.string(part.get("refusal"), f"{param}.refusal"), extra=rest(part, ("type", "refusal")))
    if kind == "input_image" and part.get("image_url") is not None:
        return _decode_image(part, param)
    return Opaque(dialects=FAMILY, raw=part)


def _decode_image(part: dict[str, JSON], param: str) -> Image:
    url = read.string(part.get("image_url"), f"{param}.image_url")
    detail = read.opt_string(part.get("detail"), f"{param}.detail")
    extra = rest(part, ("type", "image_url", "detail"))
    match = _DATA_URL.fullmatch(url)
    if match:
        return Image(media_type=match.group(1), data=match.group(2), detail=detail, extra=extra)
    return Image(url=url, detail=detail, extra=extra)


def _decode_tool_output(item: dict[str, JSON], param: str, kind: Literal["function", "custom"]) -> Message:
    call_id = read.string(item.get("call_id"), f"{param}.call_id")
    output = item.get("output")
    extra = rest(item, ("type", "call_id", "output"))
    if isinstance(output, str):
        result = ToolResult(call_id=call_id, content=(Text(text=output),), kind=kind, extra=extra)
    else:
        parts = read.array(output, f"{param}.output")
        content = tuple(_decode_output_part(p, f"{param}.output[{j}]") for j, p in enumerate(parts))
        result = ToolResult(call_id=call_id, content=content, string_form=False, kind=kind, extra=extra)
    return Message(role="tool", content=(result,))


def _decode_output_part(raw: JSON, param: str) -> Text | Image | Opaque:
    part = decode_content_part(raw, param, "user")
    if isinstance(part, Text | Image | Opaque):
        return part
    return Opaque(dialects=FAMILY, raw=raw)


def decode_model_item(item: dict[str, JSON], kind: str, param: str) -> Part:
    if kind == "reasoning":
        return _decode_reasoning_item(item, param)
    if kind == "function_call":
        return ToolCall(
            id=read.string(item.get("call_id"), f"{param}.call_id"),
            name=read.string(item.get("name"), f"{param}.name"),
            arguments=read.string(item.get("arguments"), f"{param}.arguments"),
            item_id=read.opt_string(item.get("id"), f"{param}.id"),
            extra=rest(item, ("type", "call_id", "name", "arguments", "id")),
        )
    if kind == "custom_tool_call":
        return ToolCall(
            id=read.string(item.get("call_id"), f"{param}.call_id"),
            name=read.string(item.get("name"), f"{param}.name"),
            arguments=read.string(item.get("input"), f"{param}.input"),
            kind="custom",
            item_id=read.opt_string(item.get("id"), f"{param}.id"),
            extra=rest(item, ("type", "call_id", "name", "input", "id")),
        )
    log.debug("kept %s item %s as opaque (responses family only)", kind, param)
    return Opaque(dialects=FAMILY, raw=item)


def _texts(raw: JSON, param: str) -> tuple[str, ...]:
    entries = read.array(raw, param)
    return tuple(
        read.string(read.obj(e, f"{param}[{j}]").get("text"), f"{param}[{j}].text") for j, e in enumerate(entries)
    )


def _decode_reasoning_item(item: dict[str, JSON], param: str) -> Part:
    encrypted = read.opt_string(item.get("encrypted_content"), f"{param}.encrypted_content")
    if is_carry(encrypted):
        assert encrypted is not None  # for mypy: is_carry(None) is False
        return _restore_thinking(encrypted, param)
    content = item.get("content")
    return Reasoning(
        id=read.opt_string(item.get("id"), f"{param}.id"),
        summary=_texts(item.get("summary", []), f"{param}.summary"),
        content=None if content is None else _texts(content, f"{param}.content"),
        encrypted_content=encrypted,
        extra=rest(item, ("type", "id", "summary", "content", "encrypted_content")),
    )


def _restore_thinking(carry: str, param: str) -> Thinking | RedactedThinking:
    """The Claude thinking block this proxy hid in a reasoning item's ``encrypted_content``."""
    fields = decode_carry(carry, "claude-thinking")
    if isinstance(fields.get("r"), str):
        return RedactedThinking(data=fields["r"])
    thinking, signature = fields.get("t"), fields.get("s")
    if not isinstance(thinking, str) or not (signature is None or isinstance(signature, str)):
        raise Invalid("a reasoning item carried by the proxy is not readable", f"{param}.encrypted_content")
    return Thinking(thinking=thinking, signature=signature)


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...] | None:
    if raw is None:
        return None
    return tuple(
        _decode_tool(read.obj(t, f"tools[{i}]"), f"tools[{i}]") for i, t in enumerate(read.array(raw, "tools"))
    )


def _decode_tool(tool: dict[str, JSON], param: str) -> Tool | HostedTool:
    kind = tool.get("type")
    if kind == "function":
        strict = tool.get("strict")
        return Tool(
            name=read.string(tool.get("name"), f"{param}.name"),
            description=read.opt_string(tool.get("description"), f"{param}.description"),
            parameters=tool.get("parameters"),
            strict=strict if isinstance(strict, bool) else None,
            extra=rest(tool, ("type", "name", "description", "parameters", "strict")),
        )
    if kind == "custom":
        # ``format`` (grammar / text) has no canonical field: it stays in extra.
        return Tool(
            name=read.string(tool.get("name"), f"{param}.name"),
            description=read.opt_string(tool.get("description"), f"{param}.description"),
            kind="custom",
            extra=rest(tool, ("type", "name", "description")),
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
    config = read.obj(raw, "reasoning")
    kept = rest(config, ("effort", "summary"))
    if kept:
        extra["reasoning"] = kept
    return ReasoningConfig(
        effort=read.opt_string(config.get("effort"), "reasoning.effort"),
        summary=read.opt_string(config.get("summary"), "reasoning.summary"),
    )


def _decode_text_config(raw: JSON, extra: Extra) -> ResponseFormat | None:
    if raw is None:
        return None
    text = read.obj(raw, "text")
    kept = rest(text, ("format",))
    if kept or "format" not in text:
        extra["text"] = kept
    if text.get("format") is None:
        return None
    fmt = read.obj(text["format"], "text.format")
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise read.fail("text.format.type", "must be text, json_object or json_schema")
    strict = fmt.get("strict")
    return ResponseFormat(
        type=kind,
        name=read.opt_string(fmt.get("name"), "text.format.name"),
        schema=fmt.get("schema"),
        strict=strict if isinstance(strict, bool) else None,
        description=read.opt_string(fmt.get("description"), "text.format.description"),
    )
