"""OpenAI Chat Completions (``openai-chat``): requests, responses, streams and errors.

Chat keeps a whole assistant turn in one message with separate fields (``content``, ``refusal``,
``tool_calls`` and the non-standard ``reasoning_content`` / ``thinking_blocks``), tool results in
``role:"tool"`` messages, and streams ``data:`` chunks whose deltas carry the same fields, ending with
``data: [DONE]``. This codec maps those fields onto the canonical parts and block events.

Three rules shape it:

* a chat request decoded and re-encoded comes back equal: wire fields without a canonical home go to
  ``extra`` (so do fields sent as ``null``), and the few wire choices with no canonical flag (legacy
  ``max_tokens``, ``stream: false``, absent assistant ``content``) are remembered there too;
* a request of another origin is reshaped for Chat: Claude-style tool results inside user turns
  become tool messages, images returned by a tool travel in a following user message (tool messages
  only take text), foreign thinking is dropped (Chat upstreams cannot verify it);
* toward a chat *client*, Claude thinking is shown as ``reasoning_content`` and carried exactly in
  ``thinking_blocks`` (LiteLLM's field), OpenAI reasoning inside a ``thinking_blocks`` entry whose
  signature is a carry envelope (``llm_proxy.carry``).

See ``docs/dialects/openai_chat.md`` for the mapping tables.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import orjson

from llm_proxy import carry
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
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, drop
from llm_proxy.errors import RequestError, UpstreamError, kind_for_status
from llm_proxy.sse import SSEParser, encode_event

NAME = "openai-chat"
_FAMILY = frozenset({NAME})
_REASONING_CARRY = "openai-reasoning"

log = logging.getLogger("llm_proxy.dialects.openai_chat")

# ---------------------------------------------------------------------------------------------
# Small validators: every malformed field becomes a RequestError naming its path
# ---------------------------------------------------------------------------------------------


def _obj(value: JSON, param: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise RequestError(f"`{param}` must be an object", param=param)
    return value


def _list(value: JSON, param: str) -> list[JSON]:
    if not isinstance(value, list):
        raise RequestError(f"`{param}` must be an array", param=param)
    return value


def _str(value: JSON, param: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"`{param}` must be a string", param=param)
    return value


def _opt_str(value: JSON, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _bool(value: JSON, param: str) -> bool:
    if not isinstance(value, bool):
        raise RequestError(f"`{param}` must be a boolean", param=param)
    return value


def _opt_bool(value: JSON, param: str) -> bool | None:
    return None if value is None else _bool(value, param)


def _int(value: JSON, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"`{param}` must be an integer", param=param)
    return value


def _number(value: JSON, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"`{param}` must be a number", param=param)
    return value


def _rest(obj: Mapping[str, JSON], consumed: tuple[str, ...]) -> Extra:
    """Fields of ``obj`` kept for the round trip: unknown ones, and known ones sent as null."""
    return {k: v for k, v in obj.items() if k not in consumed or (v is None and k != "type")}


def _same(request: Request) -> bool:
    return request.origin == NAME


# ---------------------------------------------------------------------------------------------
# Request: decode (client side)
# ---------------------------------------------------------------------------------------------

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)
_ABSENT_MARK = "_lpx_content_absent"
"""Message.extra flag: the assistant message had no ``content`` key (not even null)."""


def decode_request(body: JSON, *, path_model: str | None = None) -> Request:
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model", path_model)
    if not isinstance(model, str) or not model:
        raise RequestError("`model` must be a non-empty string", param="model")
    raw_messages = _list(body.get("messages"), "messages")
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
        fields["max_tokens"] = _int(mct, "max_completion_tokens")
        if legacy is not None:
            extra["max_tokens"] = _int(legacy, "max_tokens")
            extra["max_completion_tokens"] = mct
    elif legacy is not None:
        fields["max_tokens"] = extra["max_tokens"] = _int(legacy, "max_tokens")


def _top_tools(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["tools"] = tuple(_decode_tool(t, f"tools[{i}]") for i, t in enumerate(_list(value, "tools")))


def _top_tool_choice(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    if value in ("auto", "none", "required"):
        fields["tool_choice"] = ToolChoice(mode=value)
        return
    if isinstance(value, dict) and value.get("type") in ("function", "custom"):
        inner = _obj(value.get(value["type"]), f"tool_choice.{value['type']}")
        fields["tool_choice"] = ToolChoice(
            mode="tool", name=_str(inner.get("name"), f"tool_choice.{value['type']}.name")
        )
        return
    if isinstance(value, dict):
        extra["tool_choice"] = value  # allowed_tools and future shapes: only meaningful to Chat
        return
    raise RequestError("`tool_choice` must be none, auto, required or an object", param="tool_choice")


def _top_stop(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    if isinstance(value, str):
        fields["stop"], fields["stop_string_form"] = (value,), True
        return
    items = _list(value, "stop")
    fields["stop"] = tuple(_str(s, f"stop[{i}]") for i, s in enumerate(items))


def _top_response_format(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    obj = _obj(value, "response_format")
    kind = obj.get("type")
    if kind in ("text", "json_object"):
        fields["response_format"] = ResponseFormat(type=kind)
    elif kind == "json_schema":
        schema = _obj(obj.get("json_schema"), "response_format.json_schema")
        fields["response_format"] = ResponseFormat(
            type="json_schema",
            name=_opt_str(schema.get("name"), "response_format.json_schema.name"),
            schema=schema.get("schema"),
            strict=_opt_bool(schema.get("strict"), "response_format.json_schema.strict"),
            description=_opt_str(schema.get("description"), "response_format.json_schema.description"),
        )
    else:
        raise RequestError(
            "`response_format.type` must be text, json_object or json_schema", param="response_format.type"
        )


def _top_stream(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["stream"] = _bool(value, "stream")
    if not value:
        extra["stream"] = False  # canonical stream=False cannot say whether the client wrote it


def _top_stream_options(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    obj = _obj(value, "stream_options")
    if obj.get("include_usage") is not None:
        fields["include_usage"] = _bool(obj["include_usage"], "stream_options.include_usage")
    rest = _rest(obj, ("include_usage",))
    if rest:
        extra["stream_options"] = rest


_Handler = Callable[[JSON, dict[str, Any], Extra], None]


def _scalar(key: str, field_name: str, check: Callable[[JSON, str], JSON]) -> _Handler:
    def handler(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
        fields[field_name] = check(value, key)

    return handler


def _top_reasoning_effort(value: JSON, fields: dict[str, Any], extra: Extra) -> None:
    fields["reasoning"] = ReasoningConfig(effort=_str(value, "reasoning_effort"))


_TOP_LEVEL: dict[str, _Handler] = {
    "tools": _top_tools,
    "tool_choice": _top_tool_choice,
    "parallel_tool_calls": _scalar("parallel_tool_calls", "parallel_tool_calls", _bool),
    "stop": _top_stop,
    "temperature": _scalar("temperature", "temperature", _number),
    "top_p": _scalar("top_p", "top_p", _number),
    "n": _scalar("n", "n", _int),
    "seed": _scalar("seed", "seed", _int),
    "response_format": _top_response_format,
    "stream": _top_stream,
    "stream_options": _top_stream_options,
    "reasoning_effort": _top_reasoning_effort,
    "user": _scalar("user", "user", _str),
    "metadata": _scalar("metadata", "metadata", _obj),
    "store": _scalar("store", "store", _bool),
}


def _decode_tool(raw: JSON, param: str) -> Tool | HostedTool:
    obj = _obj(raw, param)
    kind = obj.get("type")
    if kind not in ("function", "custom"):
        return HostedTool(dialects=_FAMILY, raw=obj)
    inner = _obj(obj.get(kind), f"{param}.{kind}")
    keys = ("name", "description", "parameters", "strict") if kind == "function" else ("name", "description")
    return Tool(
        name=_str(inner.get("name"), f"{param}.{kind}.name"),
        description=_opt_str(inner.get("description"), f"{param}.{kind}.description"),
        parameters=inner.get("parameters") if kind == "function" else None,
        strict=_opt_bool(inner.get("strict"), f"{param}.{kind}.strict") if kind == "function" else None,
        kind=kind,
        extra=_rest(inner, keys),  # for custom tools this keeps ``format``, as the Responses codec does
    )


def _decode_message(raw: JSON, param: str) -> Message:
    obj = _obj(raw, param)
    role = obj.get("role")
    if role in ("system", "developer", "user"):
        return _decode_plain_message(obj, role, param)
    if role == "assistant":
        return _decode_assistant(obj, param)
    if role == "tool":
        return _decode_tool_message(obj, param)
    if role == "function":
        return _decode_function_message(obj, param)
    raise RequestError(f"`{param}.role` must be one of system, developer, user, assistant, tool", param=f"{param}.role")


def _decode_content(value: JSON, param: str) -> tuple[tuple[Part, ...], bool]:
    """Parts of a string-or-parts ``content``, and whether it was a bare string."""
    if isinstance(value, str):
        return (Text(text=value),), True
    items = _list(value, param) if value is not None else None
    if items is None:
        raise RequestError(f"`{param}` must be a string or an array of parts", param=param)
    return tuple(_decode_part(p, f"{param}[{i}]") for i, p in enumerate(items)), False


def _decode_part(raw: JSON, param: str) -> Text | Image | Opaque:
    obj = _obj(raw, param)
    kind = obj.get("type")
    if kind == "text":
        return Text(
            text=_str(obj.get("text"), f"{param}.text"),
            cache_control=obj.get("cache_control"),
            extra=_rest(obj, ("type", "text", "cache_control")),
        )
    if kind == "image_url":
        return _decode_image(obj, param)
    # input_audio, file, refusal parts and future types have no canonical meaning outside Chat
    return Opaque(dialects=_FAMILY, raw=obj)


def _decode_image(obj: dict[str, JSON], param: str) -> Image:
    inner = _obj(obj.get("image_url"), f"{param}.image_url")
    url = _str(inner.get("url"), f"{param}.image_url.url")
    detail = _opt_str(inner.get("detail"), f"{param}.image_url.detail")
    extra = _rest(obj, ("type", "image_url"))
    inner_rest = _rest(inner, ("url", "detail"))
    if inner_rest:
        extra["image_url"] = inner_rest
    match = _DATA_URL.fullmatch(url)
    if match:
        return Image(media_type=match[1], data=match[2], detail=detail, extra=extra)
    return Image(url=url, detail=detail, extra=extra)


def _decode_name(obj: dict[str, JSON], param: str) -> str | None:
    return _opt_str(obj.get("name"), f"{param}.name")


def _decode_plain_message(obj: dict[str, JSON], role: Literal["system", "developer", "user"], param: str) -> Message:
    if "content" not in obj:
        raise RequestError(f"`{param}.content` is required", param=f"{param}.content")
    parts, string_form = _decode_content(obj["content"], f"{param}.content")
    return Message(
        role=role,
        content=parts,
        string_form=string_form,
        name=_decode_name(obj, param),
        extra=_rest(obj, ("role", "content", "name")),
    )


def _decode_assistant(obj: dict[str, JSON], param: str) -> Message:
    parts: list[Part] = []
    consumed = ["role", "content", "name"]
    blocks = obj.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        parts += [_decode_thinking_block(b, f"{param}.thinking_blocks[{i}]") for i, b in enumerate(blocks)]
        consumed.append("thinking_blocks")
    elif isinstance(obj.get("reasoning_content"), str) and obj["reasoning_content"]:
        parts.append(Thinking(thinking=obj["reasoning_content"]))
    # reasoning_content always stays in extra: it is display text, re-sent verbatim to a Chat upstream
    content = obj.get("content")
    string_form = null_content = False
    if content is None:
        null_content = "content" in obj
    else:
        content_parts, string_form = _decode_content(content, f"{param}.content")
        parts += content_parts
    if isinstance(obj.get("refusal"), str):
        parts.append(Refusal(text=obj["refusal"]))
        consumed.append("refusal")
    calls = obj.get("tool_calls")
    if isinstance(calls, list) and calls:
        parts += [_decode_tool_call(c, f"{param}.tool_calls[{i}]") for i, c in enumerate(calls)]
        consumed.append("tool_calls")
    extra = _rest(obj, tuple(consumed))
    extra.pop("content", None)  # null content is the null_content flag
    if "content" not in obj:
        extra[_ABSENT_MARK] = True
    return Message(
        role="assistant",
        content=tuple(parts),
        string_form=string_form,
        null_content=null_content,
        name=_decode_name(obj, param),
        extra=extra,
    )


def _decode_thinking_block(raw: JSON, param: str) -> Thinking | RedactedThinking | Reasoning:
    obj = _obj(raw, param)
    kind = obj.get("type")
    if kind == "redacted_thinking":
        return RedactedThinking(data=_str(obj.get("data"), f"{param}.data"), extra=_rest(obj, ("type", "data")))
    if kind != "thinking":
        raise RequestError(f"`{param}.type` must be thinking or redacted_thinking", param=f"{param}.type")
    text = _str(obj.get("thinking", ""), f"{param}.thinking")
    signature = _opt_str(obj.get("signature"), f"{param}.signature")
    if carry.is_carry(signature):
        assert signature is not None
        return _reasoning_from_carry(text, signature)
    return Thinking(thinking=text, signature=signature, extra=_rest(obj, ("type", "thinking", "signature")))


def _reasoning_from_carry(text: str, signature: str) -> Reasoning:
    fields = carry.decode_carry(signature, _REASONING_CARRY)
    return Reasoning(id=fields.get("id"), summary=(text,) if text else (), encrypted_content=fields.get("enc"))


def _decode_tool_call(raw: JSON, param: str) -> ToolCall:
    obj = _obj(raw, param)
    call_id = _str(obj.get("id"), f"{param}.id")
    if obj.get("type") == "custom":
        custom = _obj(obj.get("custom"), f"{param}.custom")
        return ToolCall(
            id=call_id,
            name=_str(custom.get("name"), f"{param}.custom.name"),
            arguments=_str(custom.get("input"), f"{param}.custom.input"),
            kind="custom",
            extra=_rest(obj, ("id", "type", "custom")),
        )
    fn = _obj(obj.get("function"), f"{param}.function")
    return ToolCall(
        id=call_id,
        name=_str(fn.get("name"), f"{param}.function.name"),
        arguments=_str(fn.get("arguments"), f"{param}.function.arguments"),
        extra=_rest(obj, ("id", "type", "function")),
    )


def _decode_tool_message(obj: dict[str, JSON], param: str) -> Message:
    call_id = _str(obj.get("tool_call_id"), f"{param}.tool_call_id")
    if "content" not in obj:
        raise RequestError(f"`{param}.content` is required", param=f"{param}.content")
    parts, string_form = _decode_content(obj["content"], f"{param}.content")
    result = ToolResult(call_id=call_id, content=_result_parts(parts), string_form=string_form)
    return Message(
        role="tool",
        content=(result,),
        name=_decode_name(obj, param),
        extra=_rest(obj, ("role", "content", "name", "tool_call_id")),
    )


def _result_parts(parts: tuple[Part, ...]) -> tuple[Text | Image | Opaque, ...]:
    return tuple(p for p in parts if isinstance(p, Text | Image | Opaque))


def _decode_function_message(obj: dict[str, JSON], param: str) -> Message:
    """Legacy ``role:"function"``: a tool result keyed by the function name (it has no call id)."""
    name = _str(obj.get("name"), f"{param}.name")
    text = _str(obj.get("content"), f"{param}.content")
    result = ToolResult(call_id=name, content=(Text(text=text),))
    return Message(role="tool", content=(result,), name=name, extra={"role": "function"})


# ---------------------------------------------------------------------------------------------
# Request: encode (toward a Chat upstream, from any origin)
# ---------------------------------------------------------------------------------------------

_EFFORT_BY_BUDGET: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
"""Anthropic ``budget_tokens`` -> ``reasoning_effort``: <=4096 low, <=16384 medium, above high."""

_HANDLED_EXTRA = ("max_tokens", "max_completion_tokens", "stream_options")


def encode_request(request: Request, options: EncodeOptions) -> JSON:
    same = _same(request)
    body: dict[str, JSON] = {k: v for k, v in request.extra.items() if k not in _HANDLED_EXTRA} if same else {}
    body["model"] = request.model
    body["messages"] = _MessageEncoder(request).encode()
    _encode_tools(request, same, body)
    _encode_max_tokens(request, same, body)
    _encode_sampling(request, body)
    _encode_stream(request, same, body)
    if request.response_format is not None:
        body["response_format"] = _encode_response_format(request.response_format)
    effort = _reasoning_effort(request.reasoning)
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.user is not None:
        body["user"] = request.user
    if same:
        _put(body, "metadata", request.metadata)
        _put(body, "store", request.store)
        _put(body, "n", request.n)
    else:
        _dropped_foreign_fields(request)
    return body


def _put(body: dict[str, JSON], key: str, value: JSON) -> None:
    if value is not None:
        body[key] = value


def _dropped_foreign_fields(request: Request) -> None:
    for name, value in (("metadata", request.metadata), ("store", request.store), ("top_k", request.top_k)):
        if value is not None:
            drop(NAME, name)
    if request.previous_response_id is not None:
        drop(NAME, "previous_response_id")


def _encode_tools(request: Request, same: bool, body: dict[str, JSON]) -> None:
    tools: list[JSON] = []
    for tool in request.tools or ():
        encoded = _encode_tool(tool, same)
        if encoded is not None:
            tools.append(encoded)
    if tools or (same and request.tools is not None):
        body["tools"] = tools
    elif not same:
        return  # Chat rejects tool_choice / parallel_tool_calls without tools
    if request.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(request.tool_choice, request.tools or ())
    _put(body, "parallel_tool_calls", request.parallel_tool_calls)


def _encode_tool(tool: Tool | HostedTool, same: bool) -> JSON:
    if isinstance(tool, HostedTool):
        if NAME in tool.dialects:
            return tool.raw
        drop(NAME, "hosted tool")
        return None
    inner: dict[str, JSON] = dict(tool.extra) if same else {}
    if tool.kind == "custom" and "format" in tool.extra:
        inner["format"] = tool.extra["format"]  # the custom tool's grammar, same field in Responses
    inner["name"] = tool.name
    _put(inner, "description", tool.description)
    if tool.kind == "custom":
        return {"type": "custom", "custom": inner}
    _put(inner, "parameters", tool.parameters)
    _put(inner, "strict", tool.strict)
    return {"type": "function", "function": inner}


def _encode_tool_choice(choice: ToolChoice, tools: tuple[Tool | HostedTool, ...]) -> JSON:
    if choice.mode != "tool":
        return choice.mode
    custom = any(isinstance(t, Tool) and t.kind == "custom" and t.name == choice.name for t in tools)
    kind = "custom" if custom else "function"
    return {"type": kind, kind: {"name": choice.name}}


def _encode_max_tokens(request: Request, same: bool, body: dict[str, JSON]) -> None:
    extra = request.extra if same else {}
    if extra.get("max_completion_tokens") is not None:  # the client sent both names
        body["max_completion_tokens"] = request.max_tokens
        body["max_tokens"] = extra.get("max_tokens")
    elif extra.get("max_tokens") is not None:  # the client used the legacy name
        body["max_tokens"] = request.max_tokens
    elif request.max_tokens is not None:
        body["max_completion_tokens"] = request.max_tokens
    for key in ("max_tokens", "max_completion_tokens"):
        if key in extra and extra[key] is None:
            body[key] = None


def _encode_sampling(request: Request, body: dict[str, JSON]) -> None:
    if request.stop is not None:
        body["stop"] = request.stop[0] if request.stop_string_form and len(request.stop) == 1 else list(request.stop)
    _put(body, "temperature", request.temperature)
    _put(body, "top_p", request.top_p)
    _put(body, "seed", request.seed)


def _encode_stream(request: Request, same: bool, body: dict[str, JSON]) -> None:
    rest = request.extra.get("stream_options") if same else None
    options: dict[str, JSON] = dict(rest) if isinstance(rest, dict) else {}
    if request.stream:
        body["stream"] = True
        options["include_usage"] = True  # the proxy needs usage whatever the client asked
    elif request.include_usage is not None and same:
        options["include_usage"] = request.include_usage
    if options:
        body["stream_options"] = options


def _encode_response_format(fmt: ResponseFormat) -> JSON:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, JSON] = {"name": fmt.name or "response"}  # Chat requires a name; Claude has none
    _put(schema, "description", fmt.description)
    _put(schema, "schema", fmt.schema)
    _put(schema, "strict", fmt.strict)
    return {"type": "json_schema", "json_schema": schema}


def _reasoning_effort(config: ReasoningConfig | None) -> str | None:
    if config is None or config.mode == "disabled":
        return None
    if config.effort is not None:
        return config.effort
    if config.budget_tokens is None:
        return None  # adaptive thinking: let the model's default decide
    for limit, effort in _EFFORT_BY_BUDGET:
        if config.budget_tokens <= limit:
            return effort
    return "high"


@dataclass
class _MessageEncoder:
    """Builds Chat ``messages`` from canonical ones, reshaping foreign turns on the way."""

    request: Request
    out: list[JSON] = field(default_factory=list)
    pending_images: list[JSON] = field(default_factory=list)
    """Images returned by tools, waiting for the user message that follows the tool messages."""

    @property
    def same(self) -> bool:
        return _same(self.request)

    def encode(self) -> list[JSON]:
        if self.request.system:
            self.out.append(self._system())
        for message in self.request.messages:
            if message.role == "tool":
                self._tool_message(message)
                continue
            if message.role == "user" and any(isinstance(p, ToolResult) for p in message.content):
                self._user_with_results(message)
                continue
            self._flush_images()
            if message.role == "assistant":
                self.out.append(self._assistant(message))
            else:
                self._plain(message, message.content)
        self._flush_images()
        return self.out

    # -- system, developer, user ------------------------------------------------------------
    def _system(self) -> JSON:
        system = self.request.system or ()
        if self.request.system_string_form and len(system) == 1:
            return {"role": "system", "content": system[0].text}
        return {"role": "system", "content": [{"type": "text", "text": t.text} for t in system]}

    def _plain(self, message: Message, parts: tuple[Part, ...], prefix: list[JSON] | None = None) -> None:
        encoded = (prefix or []) + [p for p in (self._user_part(part, message.role) for part in parts) if p is not None]
        msg: dict[str, JSON] = dict(message.extra) if self.same else {}
        msg["role"] = message.role
        if message.string_form and not prefix and all(isinstance(p, Text) for p in parts):
            msg["content"] = "".join(p.text for p in parts if isinstance(p, Text))
        elif encoded or self.same:
            msg["content"] = encoded
        else:
            drop(NAME, f"{message.role} message with no content Chat can carry")
            return
        _put(msg, "name", message.name)
        self.out.append(msg)

    def _user_part(self, part: Part, role: str) -> JSON:
        if isinstance(part, Text):
            return self._text_part(part)
        if isinstance(part, Image) and role == "user":
            return self._image_part(part)
        if isinstance(part, Opaque) and NAME in part.dialects:
            return part.raw
        drop(NAME, f"{type(part).__name__} part in a {role} message")
        return None

    def _text_part(self, part: Text) -> JSON:
        encoded: dict[str, JSON] = dict(part.extra) if self.same else {}
        encoded["type"] = "text"
        encoded["text"] = part.text
        if self.same and part.cache_control is not None:
            encoded["cache_control"] = part.cache_control
        return encoded

    def _image_part(self, part: Image) -> JSON:
        if part.data is not None:
            url = f"data:{part.media_type or 'image/png'};base64,{part.data}"
        elif part.url is not None:
            url = part.url
        else:
            drop(NAME, "image without data or url")
            return None
        extra = dict(part.extra) if self.same else {}
        inner_extra = extra.pop("image_url", None)
        inner: dict[str, JSON] = dict(inner_extra) if isinstance(inner_extra, dict) else {}
        inner["url"] = url
        _put(inner, "detail", part.detail)
        return {**extra, "type": "image_url", "image_url": inner}

    # -- tool results -------------------------------------------------------------------------
    def _user_with_results(self, message: Message) -> None:
        """A Claude-style user turn: tool messages first (Chat needs them right after the call)."""
        rest: list[Part] = []
        for part in message.content:
            if isinstance(part, ToolResult):
                self.out.append(self._tool_result(part, None, {}))
            else:
                rest.append(part)
        if rest or self.pending_images:
            prefix, self.pending_images = self.pending_images, []
            self._plain(Message(role="user", content=tuple(rest), string_form=False), tuple(rest), prefix)

    def _tool_message(self, message: Message) -> None:
        extra = message.extra if self.same else {}
        for part in message.content:
            if isinstance(part, ToolResult):
                self.out.append(self._tool_result(part, message.name, extra))
            else:
                drop(NAME, f"{type(part).__name__} part in a tool message")

    def _tool_result(self, result: ToolResult, name: str | None, extra: Extra) -> JSON:
        texts: list[JSON] = []
        for part in result.content:
            if isinstance(part, Text):
                texts.append(self._text_part(part))
            elif isinstance(part, Image):
                self._defer_image(result.call_id, part)
            elif NAME in part.dialects:
                texts.append(part.raw)
            else:
                drop(NAME, "opaque block in a tool result")
        content = _tool_content(result, texts)
        if extra.get("role") == "function":  # legacy function message, re-sent as it came
            return {"role": "function", "name": name, "content": content}
        msg: dict[str, JSON] = {**extra, "role": "tool", "tool_call_id": result.call_id, "content": content}
        _put(msg, "name", name)
        return msg

    def _defer_image(self, call_id: str, image: Image) -> None:
        encoded = self._image_part(image)
        if encoded is None:
            return
        if not self.pending_images:
            self.pending_images.append({"type": "text", "text": f"Image returned by tool call {call_id}:"})
        self.pending_images.append(encoded)

    def _flush_images(self) -> None:
        if self.pending_images:
            self.out.append({"role": "user", "content": self.pending_images})
            self.pending_images = []

    # -- assistant ----------------------------------------------------------------------------
    def _assistant(self, message: Message) -> JSON:
        same = self.same
        msg: dict[str, JSON] = {k: v for k, v in message.extra.items() if k != _ABSENT_MARK} if same else {}
        msg["role"] = "assistant"
        texts = [p for p in message.content if isinstance(p, Text)]
        calls = [p for p in message.content if isinstance(p, ToolCall)]
        content = self._assistant_content(message, texts, bool(calls))
        if content is not _OMIT:
            msg["content"] = content
        refusals = [p.text for p in message.content if isinstance(p, Refusal)]
        if refusals:
            msg["refusal"] = "".join(refusals)
        if calls:
            msg["tool_calls"] = [_encode_tool_call(c, same) for c in calls]
        thinking = [p for p in message.content if isinstance(p, Thinking | RedactedThinking | Reasoning)]
        if thinking and same and _needs_thinking_blocks(thinking, message.extra):
            msg["thinking_blocks"] = [_thinking_block(p) for p in thinking]
        elif thinking and not same:
            drop(NAME, "thinking of another vendor")
        _put(msg, "name", message.name)
        return msg

    def _assistant_content(self, message: Message, texts: list[Text], has_calls: bool) -> JSON:
        if not self.same:
            if texts:
                return "".join(t.text for t in texts)
            return None if has_calls else ""  # Chat needs content unless there are tool calls
        if message.string_form:
            return "".join(t.text for t in texts)
        if message.null_content:
            return None
        parts = [self._text_part(p) if isinstance(p, Text) else p.raw for p in message.content if _is_content(p)]
        if not parts and message.extra.get(_ABSENT_MARK):
            return _OMIT
        return parts


_OMIT: JSON = object()
"""Sentinel: leave the ``content`` key out (the client's assistant message had none)."""


def _is_content(part: Part) -> TypeGuard[Text | Opaque]:
    return isinstance(part, Text) or (isinstance(part, Opaque) and NAME in part.dialects)


def _tool_content(result: ToolResult, parts: list[JSON]) -> JSON:
    """A tool message's content; ``is_error`` has no Chat field, so the text says it."""
    if result.string_form and all(isinstance(p, Text) for p in result.content):
        text = "".join(p.text for p in result.content if isinstance(p, Text))
        return _error_prefixed(text) if result.is_error else text
    if not parts:
        return "Error: " if result.is_error else ""
    if result.is_error and isinstance(parts[0], dict) and parts[0].get("type") == "text":
        parts[0] = {**parts[0], "text": _error_prefixed(str(parts[0].get("text", "")))}
    return parts


def _error_prefixed(text: str) -> str:
    return text if text.startswith("Error: ") else "Error: " + text


def _encode_tool_call(call: ToolCall, same: bool) -> JSON:
    encoded: dict[str, JSON] = dict(call.extra) if same else {}
    encoded["id"] = call.id
    if call.kind == "custom":
        encoded.update(type="custom", custom={"name": call.name, "input": call.arguments})
    else:
        encoded.update(type="function", function={"name": call.name, "arguments": call.arguments})
    return encoded


def _needs_thinking_blocks(thinking: list[Thinking | RedactedThinking | Reasoning], extra: Extra) -> bool:
    """False when the only thinking is the unsigned text that came from ``reasoning_content``."""
    if len(thinking) != 1:
        return True
    only = thinking[0]
    return not (
        isinstance(only, Thinking) and only.signature is None and extra.get("reasoning_content") == only.thinking
    )


def _thinking_block(part: Thinking | RedactedThinking | Reasoning) -> JSON:
    if isinstance(part, RedactedThinking):
        return {**part.extra, "type": "redacted_thinking", "data": part.data}
    if isinstance(part, Reasoning):
        return {"type": "thinking", "thinking": _reasoning_text(part), "signature": _reasoning_signature(part)}
    block: dict[str, JSON] = {**part.extra, "type": "thinking", "thinking": part.thinking}
    _put(block, "signature", part.signature)
    return block


def _reasoning_text(part: Reasoning) -> str:
    return "\n\n".join(part.summary)


def _reasoning_signature(part: Reasoning) -> str:
    return _carry_signature(part.id, part.encrypted_content)


def _carry_signature(item_id: str | None, encrypted: str | None) -> str:
    return carry.encode_carry(_REASONING_CARRY, {"id": item_id, "enc": encrypted})


# ---------------------------------------------------------------------------------------------
# Response
# ---------------------------------------------------------------------------------------------

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


def _finish_reason(stop: StopReason | None) -> str:
    return _FINISH_BY_STOP.get(stop, "stop") if stop is not None else "stop"


def _stop_reason(finish: JSON) -> StopReason | None:
    if not isinstance(finish, str):
        return None
    return _STOP_BY_FINISH.get(finish, StopReason.END_TURN)


def _count(value: JSON) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _decode_usage(raw: JSON) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    return Usage(
        input_tokens=max(_count(raw.get("prompt_tokens")) - cached, 0),
        output_tokens=_count(raw.get("completion_tokens")),
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _encode_usage(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _bad_upstream(message: str) -> UpstreamError:
    return UpstreamError(ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message))


def decode_response(body: JSON, request: Request) -> Response:
    """A Chat completion from the upstream. Only ``choices[0]`` is kept (the canonical model has one turn)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise _bad_upstream("the upstream's chat completion has no choices")
    choice = body["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _bad_upstream("the upstream's chat completion has no message")
    try:
        parts = _response_parts(message)
    except RequestError as exc:
        raise _bad_upstream(f"the upstream's chat completion is malformed: {exc.error.message}") from exc
    created = body.get("created")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or request.model),
        content=parts,
        stop_reason=_stop_reason(choice.get("finish_reason")),
        usage=_decode_usage(body.get("usage")),
        created=created if isinstance(created, int) else None,
        extra={k: body[k] for k in _RESPONSE_EXTRA if body.get(k) is not None},
        origin=NAME,
    )


def _response_parts(message: dict[str, JSON]) -> tuple[Part, ...]:
    parts: list[Part] = []
    blocks = message.get("thinking_blocks")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(blocks, list) and blocks:
        parts += [_decode_thinking_block(b, f"thinking_blocks[{i}]") for i, b in enumerate(blocks)]
    elif isinstance(reasoning, str) and reasoning:
        parts.append(Thinking(thinking=reasoning))
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(Text(text=content))
    elif isinstance(content, list):
        parts += [p for p in _decode_content(content, "content")[0] if isinstance(p, Text)]
    if isinstance(message.get("refusal"), str):
        parts.append(Refusal(text=message["refusal"]))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts += [_decode_tool_call(c, f"tool_calls[{i}]") for i, c in enumerate(calls)]
    return tuple(parts)


def _chat_id(canonical_id: str) -> str:
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
        message["tool_calls"] = [_encode_tool_call(c, False) for c in calls]
    message.update(
        _thinking_fields([p for p in response.content if isinstance(p, Thinking | RedactedThinking | Reasoning)])
    )
    body: dict[str, JSON] = {
        "id": _chat_id(response.id),
        "object": "chat.completion",
        "created": response.created if response.created is not None else int(time.time()),
        "model": request.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(response.stop_reason)}
        ],
        "usage": _encode_usage(response.usage),
    }
    if response.origin == NAME:
        body.update(response.extra)
    return orjson.dumps(body)


def _thinking_fields(thinking: list[Thinking | RedactedThinking | Reasoning]) -> dict[str, JSON]:
    """``reasoning_content`` for display, ``thinking_blocks`` when something must come back exactly."""
    if not thinking:
        return {}
    texts = [
        p.thinking if isinstance(p, Thinking) else _reasoning_text(p)
        for p in thinking
        if not isinstance(p, RedactedThinking)
    ]
    fields: dict[str, JSON] = {"reasoning_content": "".join(texts)}
    if any(not isinstance(p, Thinking) or p.signature is not None for p in thinking):
        fields["thinking_blocks"] = [_thinking_block(p) for p in thinking]
    return fields


# ---------------------------------------------------------------------------------------------
# Stream decoder (upstream Chat chunks -> canonical events)
# ---------------------------------------------------------------------------------------------

_CUT_SHORT = "upstream closed the stream before it finished"


class ChatStreamDecoder:
    """Chat ``data:`` chunks in, a well-formed canonical event sequence out (see the conventions)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._sse = SSEParser()
        self._started = False
        self._message_id = ""
        self._next_index = 0
        self._open: tuple[int, BlockKind] | None = None
        self._tools: dict[int, int] = {}
        """Chat tool-call index -> canonical block index."""
        self._stop: StopReason | None = None
        self._saw_finish = False
        self._usage = Usage()
        self._done = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in self._sse.feed(data):
            if self._done:
                break
            self._event(event.data, out)
        return out

    def close(self) -> list[StreamEvent]:
        self._sse.close()
        if self._done:
            return []
        out: list[StreamEvent] = []
        if self._saw_finish:  # lenient: some servers end without [DONE]
            self._finish(out)
        else:
            self._fail(out, ProxyError(status=502, kind=ErrorKind.API_ERROR, message=_CUT_SHORT))
        return out

    def _event(self, data: str, out: list[StreamEvent]) -> None:
        if data.strip() == "[DONE]":
            self._finish(out)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._fail(
                out, ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream sent a chunk that is not JSON")
            )
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            self._fail(out, _stream_error(chunk["error"]))
            return
        self._start(out, chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = _decode_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)

    def _start(self, out: list[StreamEvent], chunk: dict[str, JSON]) -> None:
        if self._started:
            return
        self._started = True
        chunk_id, model, created = chunk.get("id"), chunk.get("model"), chunk.get("created")
        self._message_id = chunk_id if isinstance(chunk_id, str) and chunk_id else "chatcmpl-" + uuid.uuid4().hex
        out.append(
            MessageStart(
                id=self._message_id,
                model=model if isinstance(model, str) and model else self._request.model,
                created=created if isinstance(created, int) and not isinstance(created, bool) else None,
            )
        )

    def _choice(self, choice: dict[str, JSON], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._stop, self._saw_finish = _stop_reason(finish), True

    def _delta(self, delta: dict[str, JSON], out: list[StreamEvent]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")  # vLLM/OpenRouter say "reasoning"
        if isinstance(reasoning, str) and reasoning:
            self._ensure_open("thinking", out)
            out.append(ThinkingDelta(index=self._index(), text=reasoning))
        blocks = delta.get("thinking_blocks")
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict):
                self._thinking_block(block, bool(reasoning), out)
        text_kinds: tuple[tuple[str, BlockKind], ...] = (("content", "text"), ("refusal", "refusal"))
        for key, kind in text_kinds:
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._ensure_open(kind, out)
                out.append(TextDelta(index=self._index(), text=text))
        calls = delta.get("tool_calls")
        for fragment in calls if isinstance(calls, list) else ():
            if isinstance(fragment, dict):
                self._tool_fragment(fragment, out)

    def _thinking_block(self, block: dict[str, JSON], streamed: bool, out: list[StreamEvent]) -> None:
        """A ``thinking_blocks`` entry: the signature of the open thinking block, or a whole block."""
        if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            self._open_block(out, "redacted_thinking", data=block["data"])
            self._close_open(out)
            return
        if block.get("type") != "thinking":
            return
        text, signature = block.get("thinking"), block.get("signature")
        if not self._is_open("thinking"):
            self._ensure_open("thinking", out)
            if isinstance(text, str) and text and not streamed:
                out.append(ThinkingDelta(index=self._index(), text=text))
        if isinstance(signature, str) and signature:
            out.append(SignatureDelta(index=self._index(), signature=signature))
            self._close_open(out)

    def _tool_fragment(self, fragment: dict[str, JSON], out: list[StreamEvent]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):  # some servers omit it: a fragment with an id starts a new call
            index = len(self._tools) if fragment.get("id") or not self._tools else max(self._tools)
        fn = fragment.get("function")
        fn = fn if isinstance(fn, dict) else {}
        if index not in self._tools:
            call_id, name = fragment.get("id"), fn.get("name")
            self._open_block(
                out,
                "tool_call",
                id=call_id if isinstance(call_id, str) and call_id else f"call_{self._message_id}_{index}",
                name=name if isinstance(name, str) else "",
            )
            self._tools[index] = self._next_index - 1
        elif self._open is None or self._open[0] != self._tools[index]:
            # interleaved fragments of an earlier call: canonical blocks cannot reopen
            log.debug("ignored a fragment of closed tool call %s", index)
            return
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolArgsDelta(index=self._tools[index], partial_json=arguments))

    # -- block bookkeeping --------------------------------------------------------------------
    def _index(self) -> int:
        assert self._open is not None
        return self._open[0]

    def _is_open(self, kind: BlockKind) -> bool:
        return self._open is not None and self._open[1] == kind

    def _ensure_open(self, kind: BlockKind, out: list[StreamEvent]) -> None:
        if not self._is_open(kind):
            self._open_block(out, kind)

    def _open_block(self, out: list[StreamEvent], kind: BlockKind, **fields: Any) -> None:
        self._close_open(out)
        out.append(BlockStart(index=self._next_index, kind=kind, **fields))
        self._open = (self._next_index, kind)
        self._next_index += 1

    def _close_open(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(index=self._open[0]))
            self._open = None

    def _finish(self, out: list[StreamEvent]) -> None:
        self._start(out, {})
        self._close_open(out)
        out.append(Finish(stop_reason=self._stop, usage=self._usage))
        self._done = True

    def _fail(self, out: list[StreamEvent], error: ProxyError) -> None:
        out.append(StreamError(error=error))
        self._done = True


# ---------------------------------------------------------------------------------------------
# Stream encoder (canonical events -> Chat chunks for the client)
# ---------------------------------------------------------------------------------------------


@dataclass
class _OpenBlock:
    kind: BlockKind
    tool_index: int = -1
    item_id: str | None = None
    data: str | None = None
    text: list[str] = field(default_factory=list)
    signature: str | None = None


class ChatStreamEncoder:
    """Canonical events in, Chat chunk bytes out; ``close()`` writes ``data: [DONE]``."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._include_usage = request.include_usage is True
        self._id = ""
        self._created = 0
        self._started = False
        self._blocks: dict[int, _OpenBlock] = {}
        self._tool_count = 0
        self._ended = False
        self._errored = False

    def encode(self, event: StreamEvent) -> bytes:
        if self._errored:
            return b""
        if isinstance(event, StreamError):
            self._errored = True
            return encode_event(orjson.dumps({"error": _error_object(event.error)}))
        if isinstance(event, MessageStart):
            return self._start(event.id, event.created)
        head = b"" if self._started else self._start("", None)
        return head + self._body(event)

    def close(self) -> bytes:
        if self._errored or self._ended:
            return b""
        self._ended = True
        return b"data: [DONE]\n\n"

    def _start(self, message_id: str, created: int | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._id = _chat_id(message_id)
        self._created = created if created is not None else int(time.time())
        return self._chunk({"role": "assistant", "content": ""})

    def _body(self, event: StreamEvent) -> bytes:
        if isinstance(event, BlockStart):
            return self._block_start(event)
        if isinstance(event, Finish):
            return self._finish(event)
        block = self._blocks.get(getattr(event, "index", -1))
        if block is None:
            return b""
        if isinstance(event, TextDelta):
            key = "refusal" if block.kind == "refusal" else "content"
            return self._chunk({key: event.text}) if block.kind in ("text", "refusal") else b""
        if isinstance(event, ToolArgsDelta):
            return self._chunk(
                {"tool_calls": [{"index": block.tool_index, "function": {"arguments": event.partial_json}}]}
            )
        if isinstance(event, ThinkingDelta):
            block.text.append(event.text)
            return self._chunk({"reasoning_content": event.text})
        if isinstance(event, SignatureDelta):
            block.signature = event.signature
            return b""
        if isinstance(event, BlockStop):
            del self._blocks[event.index]
            return self._block_stop(block)
        return b""

    def _block_start(self, event: BlockStart) -> bytes:
        block = _OpenBlock(kind=event.kind, item_id=event.id, data=event.data)
        self._blocks[event.index] = block
        if event.kind != "tool_call":
            return b""
        block.tool_index = self._tool_count
        self._tool_count += 1
        call = {
            "index": block.tool_index,
            "id": event.id,
            "type": "function",
            "function": {"name": event.name, "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _block_stop(self, block: _OpenBlock) -> bytes:
        """Thinking is carried whole at its end, once the signature is known."""
        if block.kind == "redacted_thinking" and block.data is not None:
            return self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": block.data}]})
        if block.kind == "reasoning":
            signature = _carry_signature(block.item_id, block.signature)
        elif block.kind == "thinking" and block.signature is not None:
            signature = block.signature
        else:
            return b""
        complete = {"type": "thinking", "thinking": "".join(block.text), "signature": signature}
        return self._chunk({"thinking_blocks": [complete]})

    def _finish(self, event: Finish) -> bytes:
        out = self._chunk({}, _finish_reason(event.stop_reason))
        if self._include_usage:
            usage_chunk = {**self._envelope(), "choices": [], "usage": _encode_usage(event.usage)}
            out += encode_event(orjson.dumps(usage_chunk))
        return out

    def _envelope(self) -> dict[str, JSON]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, JSON], finish_reason: str | None = None) -> bytes:
        chunk = self._envelope()
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: null on every chunk but the usage chunk
        return encode_event(orjson.dumps(chunk))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

_KIND_BY_CODE: dict[str, ErrorKind] = {
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "model_not_found": ErrorKind.NOT_FOUND,
}
# Only types that say more than the status; generic ones (invalid_request_error, server_error) defer to it.
_KIND_BY_TYPE: dict[str, ErrorKind] = {
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "tokens": ErrorKind.RATE_LIMIT,
    "requests": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "billing_error": ErrorKind.BILLING,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout_error": ErrorKind.TIMEOUT,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "conflict_error": ErrorKind.CONFLICT,
}
_CONTEXT_PHRASES = ("prompt is too long", "maximum context length", "context_length_exceeded")
_STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.CONTEXT_LENGTH: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.BILLING: 429,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.UPSTREAM_UNREACHABLE: 502,
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
_CODE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
}


def _error_kind(status: int, err_type: str | None, code: str | None, message: str) -> ErrorKind:
    lowered = message.lower()
    if code == "context_length_exceeded" or any(p in lowered for p in _CONTEXT_PHRASES):
        return ErrorKind.CONTEXT_LENGTH
    if code in _KIND_BY_CODE:
        return _KIND_BY_CODE[code]
    if err_type in _KIND_BY_TYPE:
        return _KIND_BY_TYPE[err_type]
    return kind_for_status(status)


def _text_field(obj: dict[str, JSON], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _error_from_object(err: dict[str, JSON], status: int | None, retry_after: str | None) -> ProxyError:
    err_type, code = _text_field(err, "type"), _text_field(err, "code")
    message = _text_field(err, "message") or "upstream error"
    guess = status if status is not None else (400 if err_type == "invalid_request_error" else 500)
    kind = _error_kind(guess, err_type, code, message)
    return ProxyError(
        status=status if status is not None else _STATUS_BY_KIND.get(kind, guess),
        kind=kind,
        message=message,
        param=_text_field(err, "param"),
        code=code,
        retry_after=retry_after,
    )


def _stream_error(raw: JSON) -> ProxyError:
    if isinstance(raw, dict):
        return _error_from_object(raw, None, None)
    return ProxyError(status=500, kind=ErrorKind.API_ERROR, message=str(raw))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    retry_after = _header(headers, "retry-after")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return _error_from_object(err, status, retry_after)
    if isinstance(err, str):
        message = err
    elif isinstance(doc, dict) and isinstance(doc.get("message"), str):
        message = doc["message"]
    else:
        message = body.decode("utf-8", "replace")[:500] or f"upstream returned HTTP {status}"
    return ProxyError(
        status=status, kind=_error_kind(status, None, None, message), message=message, retry_after=retry_after
    )


def _error_object(error: ProxyError) -> dict[str, JSON]:
    return {
        "message": error.message,
        "type": _TYPE_BY_KIND.get(error.kind, "invalid_request_error"),
        "param": error.param,
        "code": _CODE_BY_KIND.get(error.kind, error.code),
    }


def encode_error(error: ProxyError) -> ErrorBody:
    status = {
        ErrorKind.OVERLOADED: 503,
        ErrorKind.UPSTREAM_UNREACHABLE: 502,
        ErrorKind.TIMEOUT: 504,
    }.get(error.kind, error.status)
    headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
    return ErrorBody(status=status, body=orjson.dumps({"error": _error_object(error)}), headers=headers)


# ---------------------------------------------------------------------------------------------
# The dialect object
# ---------------------------------------------------------------------------------------------


class OpenAIChatDialect:
    name = NAME

    def decode_request(self, body: JSON, *, path_model: str | None = None) -> Request:
        return decode_request(body, path_model=path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return encode_response(response, request)

    def stream_encoder(self, request: Request) -> ChatStreamEncoder:
        return ChatStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request, options)

    def upstream_path(self, request: Request) -> str:
        return "/v1/chat/completions"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_response(body, request)

    def stream_decoder(self, request: Request) -> ChatStreamDecoder:
        return ChatStreamDecoder(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return decode_error(status, body, headers)


DIALECT: Dialect = OpenAIChatDialect()
