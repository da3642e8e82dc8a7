"""Decoding a Chat Completions request (client side) into a canonical ``Request``.

Wire fields without a canonical home go to ``extra`` (so do fields sent as null), and the wire choices
with no canonical flag (legacy ``max_tokens``, ``stream: false``, absent assistant ``content``) are
remembered there too, so that the request re-encodes to an equal body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    Image,
    Message,
    Opaque,
    Part,
    ReasoningConfig,
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
from llm_proxy.dialects.openai_chat.thinking import decode_thinking_block
from llm_proxy.dialects.openai_chat.wire import ABSENT_MARK, FAMILY, NAME, read
from llm_proxy.errors import RequestError

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def decode_request(body: JSON, *, path_model: str | None = None) -> Request:
    """A client's Chat request; a malformed one raises ``RequestError`` naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    try:
        return _decode_request(body, path_model)
    except Invalid as exc:
        raise exc.request_error() from None


def _decode_request(body: dict[str, JSON], path_model: str | None) -> Request:
    model = body.get("model", path_model)
    if not isinstance(model, str) or not model:
        raise read.fail("model", "must be a non-empty string")
    raw_messages = read.array(body.get("messages"), "messages")
    messages = tuple(_decode_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
    fields: dict[str, Any] = {}
    extra: Extra = {}
    for key, value in body.items():
        if key in ("model", "messages", "max_tokens", "max_completion_tokens"):
            continue
        handler = _TOP_LEVEL.get(key)
        if value is None or handler is None:
            extra[key] = value
        else:
            handler(value, fields, extra)
    _decode_max_tokens(body, fields, extra)
    return Request(model=model, messages=messages, origin=NAME, extra=extra, **fields)


def _decode_max_tokens(body: dict[str, JSON], fields: dict[str, Any], extra: Extra) -> None:
    """Canonical ``max_tokens`` from either wire name; ``extra`` remembers which names were used.

    ``extra["max_tokens"]`` set: the client used the legacy name; ``extra["max_completion_tokens"]``
    set as well: it sent both (the new name wins, the legacy value is re-sent as it was).
    """
    mct, legacy = body.get("max_completion_tokens"), body.get("max_tokens")
    for key in ("max_completion_tokens", "max_tokens"):
        if key in body and body[key] is None:
            extra[key] = None
    if mct is not None:
        fields["max_tokens"] = read.integer(mct, "max_completion_tokens")
        if legacy is not None:
            extra["max_tokens"] = read.integer(legacy, "max_tokens")
            extra["max_completion_tokens"] = mct
    elif legacy is not None:
        fields["max_tokens"] = extra["max_tokens"] = read.integer(legacy, "max_tokens")


def _top_tools(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["tools"] = tuple(_decode_tool(t, f"tools[{i}]") for i, t in enumerate(read.array(value, "tools")))


def _top_tool_choice(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    if value in ("auto", "none", "required"):
        fields["tool_choice"] = ToolChoice(mode=value)
        return
    if isinstance(value, dict) and value.get("type") in ("function", "custom"):
        inner = read.obj(value.get(value["type"]), f"tool_choice.{value['type']}")
        fields["tool_choice"] = ToolChoice(
            mode="tool", name=read.string(inner.get("name"), f"tool_choice.{value['type']}.name")
        )
        return
    if isinstance(value, dict):
        extra["tool_choice"] = value  # allowed_tools and future shapes: only meaningful to Chat
        return
    raise read.fail("tool_choice", "must be none, auto, required or an object")


def _top_stop(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    if isinstance(value, str):
        fields["stop"], fields["stop_string_form"] = (value,), True
        return
    items = read.array(value, "stop")
    fields["stop"] = tuple(read.string(s, f"stop[{i}]") for i, s in enumerate(items))


def _top_response_format(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    obj = read.obj(value, "response_format")
    kind = obj.get("type")
    if kind in ("text", "json_object"):
        fields["response_format"] = ResponseFormat(type=kind)
    elif kind == "json_schema":
        schema = read.obj(obj.get("json_schema"), "response_format.json_schema")
        fields["response_format"] = ResponseFormat(
            type="json_schema",
            name=read.opt_string(schema.get("name"), "response_format.json_schema.name"),
            schema=schema.get("schema"),
            strict=read.opt_boolean(schema.get("strict"), "response_format.json_schema.strict"),
            description=read.opt_string(schema.get("description"), "response_format.json_schema.description"),
        )
    else:
        raise read.fail("response_format.type", "must be text, json_object or json_schema")


def _top_stream(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["stream"] = read.boolean(value, "stream")
    if not value:
        extra["stream"] = False  # canonical stream=False cannot say whether the client wrote it


def _top_stream_options(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    obj = read.obj(value, "stream_options")
    if obj.get("include_usage") is not None:
        fields["include_usage"] = read.boolean(obj["include_usage"], "stream_options.include_usage")
    kept = rest(obj, ("include_usage",))
    if kept:
        extra["stream_options"] = kept


_Handler = Callable[[JSON, dict[str, Any], Extra], None]


def _scalar(key: str, field_name: str, check: Callable[[JSON, str], JSON]) -> _Handler:
    def handler(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
        fields[field_name] = check(value, key)

    return handler


def _top_reasoning_effort(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["reasoning"] = ReasoningConfig(effort=read.string(value, "reasoning_effort"))


_TOP_LEVEL: dict[str, _Handler] = {
    "tools": _top_tools,
    "tool_choice": _top_tool_choice,
    "parallel_tool_calls": _scalar("parallel_tool_calls", "parallel_tool_calls", read.boolean),
    "stop": _top_stop,
    "temperature": _scalar("temperature", "temperature", read.number),
    "top_p": _scalar("top_p", "top_p", read.number),
    "n": _scalar("n", "n", read.integer),
    "seed": _scalar("seed", "seed", read.integer),
    "response_format": _top_response_format,
    "stream": _top_stream,
    "stream_options": _top_stream_options,
    "reasoning_effort": _top_reasoning_effort,
    "user": _scalar("user", "user", read.string),
    "metadata": _scalar("metadata", "metadata", read.obj),
    "store": _scalar("store", "store", read.boolean),
}


def _decode_tool(raw: JSON, param: str) -> Tool | HostedTool:
    obj = read.obj(raw, param)
    kind = obj.get("type")
    if kind not in ("function", "custom"):
        return HostedTool(dialects=FAMILY, raw=obj)
    inner = read.obj(obj.get(kind), f"{param}.{kind}")
    keys = ("name", "description", "parameters", "strict") if kind == "function" else ("name", "description")
    return Tool(
        name=read.string(inner.get("name"), f"{param}.{kind}.name"),
        description=read.opt_string(inner.get("description"), f"{param}.{kind}.description"),
        parameters=inner.get("parameters") if kind == "function" else None,
        strict=read.opt_boolean(inner.get("strict"), f"{param}.{kind}.strict") if kind == "function" else None,
        kind=kind,
        extra=rest(inner, keys),  # for custom tools this keeps ``format``, as the Responses codec does
    )


def _decode_message(raw: JSON, param: str) -> Message:
    obj = read.obj(raw, param)
    role = obj.get("role")
    if role in ("system", "developer", "user"):
        return _decode_plain_message(obj, role, param)
    if role == "assistant":
        return _decode_assistant(obj, param)
    if role == "tool":
        return _decode_tool_message(obj, param)
    if role == "function":
        return _decode_function_message(obj, param)
    raise read.fail(f"{param}.role", "must be one of system, developer, user, assistant, tool")


def decode_content(value: JSON, param: str) -> tuple[tuple[Part, ...], bool]:
    """Parts of a string-or-parts ``content``, and whether it was a bare string."""
    if isinstance(value, str):
        return (Text(text=value),), True
    items = read.array(value, param) if value is not None else None
    if items is None:
        raise read.fail(param, "must be a string or an array of parts")
    return tuple(_decode_part(p, f"{param}[{i}]") for i, p in enumerate(items)), False


def _decode_part(raw: JSON, param: str) -> Text | Image | Opaque:
    obj = read.obj(raw, param)
    kind = obj.get("type")
    if kind == "text":
        return Text(
            text=read.string(obj.get("text"), f"{param}.text"),
            cache_control=obj.get("cache_control"),
            extra=rest(obj, ("type", "text", "cache_control")),
        )
    if kind == "image_url":
        return _decode_image(obj, param)
    # input_audio, file, refusal parts and future types have no canonical meaning outside Chat
    return Opaque(dialects=FAMILY, raw=obj)


def _decode_image(obj: dict[str, JSON], param: str) -> Image:
    inner = read.obj(obj.get("image_url"), f"{param}.image_url")
    url = read.string(inner.get("url"), f"{param}.image_url.url")
    detail = read.opt_string(inner.get("detail"), f"{param}.image_url.detail")
    extra = rest(obj, ("type", "image_url"))
    inner_rest = rest(inner, ("url", "detail"))
    if inner_rest:
        extra["image_url"] = inner_rest
    match = _DATA_URL.fullmatch(url)
    if match:
        return Image(media_type=match[1], data=match[2], detail=detail, extra=extra)
    return Image(url=url, detail=detail, extra=extra)


def _decode_name(obj: dict[str, JSON], param: str) -> str | None:
    return read.opt_string(obj.get("name"), f"{param}.name")


def _decode_plain_message(obj: dict[str, JSON], role: Literal["system", "developer", "user"], param: str) -> Message:
    if "content" not in obj:
        raise read.fail(f"{param}.content", "is required")
    parts, string_form = decode_content(obj["content"], f"{param}.content")
    return Message(
        role=role,
        content=parts,
        string_form=string_form,
        name=_decode_name(obj, param),
        extra=rest(obj, ("role", "content", "name")),
    )


def _decode_assistant(obj: dict[str, JSON], param: str) -> Message:
    parts: list[Part] = []
    consumed = ["role", "content", "name"]
    blocks = obj.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        parts += [decode_thinking_block(b, f"{param}.thinking_blocks[{i}]") for i, b in enumerate(blocks)]
        consumed.append("thinking_blocks")
    elif isinstance(obj.get("reasoning_content"), str) and obj["reasoning_content"]:
        parts.append(Thinking(thinking=obj["reasoning_content"]))
    # reasoning_content always stays in extra: it is display text, re-sent verbatim to a Chat upstream
    content = obj.get("content")
    string_form = null_content = False
    if content is None:
        null_content = "content" in obj
    else:
        content_parts, string_form = decode_content(content, f"{param}.content")
        parts += content_parts
    if isinstance(obj.get("refusal"), str):
        parts.append(Refusal(text=obj["refusal"]))
        consumed.append("refusal")
    calls = obj.get("tool_calls")
    if isinstance(calls, list) and calls:
        parts += [decode_tool_call(c, f"{param}.tool_calls[{i}]") for i, c in enumerate(calls)]
        consumed.append("tool_calls")
    extra = rest(obj, tuple(consumed))
    extra.pop("content", None)  # null content is the null_content flag
    if "content" not in obj:
        extra[ABSENT_MARK] = True
    return Message(
        role="assistant",
        content=tuple(parts),
        string_form=string_form,
        null_content=null_content,
        name=_decode_name(obj, param),
        extra=extra,
    )


def decode_tool_call(raw: JSON, param: str) -> ToolCall:
    obj = read.obj(raw, param)
    call_id = read.string(obj.get("id"), f"{param}.id")
    if obj.get("type") == "custom":
        custom = read.obj(obj.get("custom"), f"{param}.custom")
        return ToolCall(
            id=call_id,
            name=read.string(custom.get("name"), f"{param}.custom.name"),
            arguments=read.string(custom.get("input"), f"{param}.custom.input"),
            kind="custom",
            extra=rest(obj, ("id", "type", "custom")),
        )
    fn = read.obj(obj.get("function"), f"{param}.function")
    return ToolCall(
        id=call_id,
        name=read.string(fn.get("name"), f"{param}.function.name"),
        arguments=read.string(fn.get("arguments"), f"{param}.function.arguments"),
        # a null type reads as "function" and is written back as such, so it is not kept
        extra=rest(obj, ("id", "type", "function"), drop_null=("type",)),
    )


def _decode_tool_message(obj: dict[str, JSON], param: str) -> Message:
    call_id = read.string(obj.get("tool_call_id"), f"{param}.tool_call_id")
    if "content" not in obj:
        raise read.fail(f"{param}.content", "is required")
    parts, string_form = decode_content(obj["content"], f"{param}.content")
    result = ToolResult(call_id=call_id, content=_result_parts(parts), string_form=string_form)
    return Message(
        role="tool",
        content=(result,),
        name=_decode_name(obj, param),
        extra=rest(obj, ("role", "content", "name", "tool_call_id")),
    )


def _result_parts(parts: tuple[Part, ...]) -> tuple[Text | Image | Opaque, ...]:
    return tuple(p for p in parts if isinstance(p, Text | Image | Opaque))


def _decode_function_message(obj: dict[str, JSON], param: str) -> Message:
    """Legacy ``role:"function"``: a tool result keyed by the function name (it has no call id)."""
    name = read.string(obj.get("name"), f"{param}.name")
    text = read.string(obj.get("content"), f"{param}.content")
    result = ToolResult(call_id=name, content=(Text(text=text),))
    return Message(role="tool", content=(result,), name=name, extra={"role": "function"})
