"""A Chat Completions request body, both ways: its top-level fields (tools, tool choice, limits, sampling,
stream options, response format, reasoning effort); the messages are ``messages``' business.

A chat request decodes and re-encodes to an equal body: top-level fields without a canonical home go to
``extra`` (so do fields sent as null), and the choices with no canonical flag (legacy ``max_tokens``,
``stream: false``) are remembered there too. A request of another origin is reshaped for Chat and what Chat
has no place for is dropped with a debug log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Tool,
    ToolChoice,
)
from llm_proxy.dialects.base import EncodeOptions, drop
from llm_proxy.dialects.jsonread import Invalid, put, rest
from llm_proxy.dialects.openai_chat.messages import MessageEncoder, decode_message
from llm_proxy.dialects.openai_chat.wire import FAMILY, NAME, from_chat, read
from llm_proxy.errors import RequestError

# ---------------------------------------------------------------------------------------------
# Decoding a client's request
# ---------------------------------------------------------------------------------------------


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
    messages = tuple(decode_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
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
        fields["stop"], fields["native"] = (value,), {"stop": "string"}
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


# ---------------------------------------------------------------------------------------------
# Encoding a request for a Chat upstream, from any origin
# ---------------------------------------------------------------------------------------------


_EFFORT_BY_BUDGET: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
"""Anthropic ``budget_tokens`` -> ``reasoning_effort``: <=4096 low, <=16384 medium, above high."""


_HANDLED_EXTRA = ("max_tokens", "max_completion_tokens", "stream_options")


def encode_request(request: Request, options: EncodeOptions) -> JSON:
    same = from_chat(request)
    body: dict[str, JSON] = {k: v for k, v in request.extra.items() if k not in _HANDLED_EXTRA} if same else {}
    body["model"] = request.model
    body["messages"] = MessageEncoder(request).encode()
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
        put(body, "metadata", request.metadata)
        put(body, "store", request.store)
        put(body, "n", request.n)
    else:
        _dropped_foreign_fields(request)
    return body


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
    put(body, "parallel_tool_calls", request.parallel_tool_calls)


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
    put(inner, "description", tool.description)
    if tool.kind == "custom":
        return {"type": "custom", "custom": inner}
    put(inner, "parameters", tool.parameters)
    put(inner, "strict", tool.strict)
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
        body["stop"] = (
            request.stop[0] if request.native.get("stop") == "string" and len(request.stop) == 1 else list(request.stop)
        )
    put(body, "temperature", request.temperature)
    put(body, "top_p", request.top_p)
    put(body, "seed", request.seed)


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
    put(schema, "description", fmt.description)
    put(schema, "schema", fmt.schema)
    put(schema, "strict", fmt.strict)
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
