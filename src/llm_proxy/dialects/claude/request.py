"""The Messages request body: ``decode_body`` (wire -> canonical) and ``encode_body`` (canonical -> wire).

Neither touches ``model`` or ``stream``, which differ between the Anthropic and Bedrock envelopes. Decoding
keeps every field without a canonical home in ``extra``; encoding a request of another origin maps tools,
tool choice, reasoning effort (to a thinking budget), sampling and output format onto what the Messages
API accepts and drops, with a debug log, what it would reject.
"""

from __future__ import annotations

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    Message,
    Native,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Role,
    Text,
    Tool,
    ToolChoice,
)
from llm_proxy.dialects.base import EncodeOptions, drop, log
from llm_proxy.dialects.claude.blocks import decode_blocks, finish_block
from llm_proxy.dialects.claude.conversation import encode_conversation
from llm_proxy.dialects.claude.wire import (
    BEDROCK_ENVELOPE,
    CUSTOM_TOOL_SCHEMA,
    DEFAULT_INPUT_SCHEMA,
    EFFORT_BUDGETS,
    FAMILY,
    MIN_THINKING_BUDGET,
    NAME,
    read,
)
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest, string_or
from llm_proxy.errors import RequestError

# ---------------------------------------------------------------------------------------------
# Decoding a request body
# ---------------------------------------------------------------------------------------------

_TOP_LEVEL = frozenset(
    {
        "model",
        "stream",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "thinking",
        "output_config",
    }
)
_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system"}
_CHOICE_MODES = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}
_THINKING_MODES = frozenset({"enabled", "adaptive", "disabled"})


def _decode_message(raw: JSON, path: str) -> Message:
    obj = read.obj(raw, path)
    role = _ROLES.get(string_or(obj.get("role")))
    if role is None:
        raise Invalid(f"{path}.role must be one of user, assistant, system", f"{path}.role")
    content = obj.get("content")
    extra = rest(obj, ("role", "content"))
    if isinstance(content, str):
        return Message(role=role, content=(Text(text=content),), native={"content": "string"}, extra=extra)
    return Message(role=role, content=decode_blocks(content, f"{path}.content"), extra=extra)


def _decode_system(raw: JSON) -> tuple[tuple[Text, ...] | None, Native]:
    """The system prompt, and ``{"system": "list"}`` when it was written as blocks."""
    if raw is None:
        return None, {}
    if isinstance(raw, str):
        return (Text(text=raw),), {}
    parts = decode_blocks(raw, "system")
    for i, part in enumerate(parts):
        if not isinstance(part, Text):
            raise Invalid("system blocks must be text blocks", f"system[{i}]")
    return tuple(p for p in parts if isinstance(p, Text)), {"system": "list"}


def _decode_tool(raw: JSON, path: str) -> Tool | HostedTool:
    tool = read.obj(raw, path)
    kind = tool.get("type")
    if kind is not None and kind != "custom":
        return HostedTool(dialects=FAMILY, raw=tool)  # versioned server tools (web search, bash, ...)
    return Tool(
        name=read.string(tool.get("name"), f"{path}.name"),
        description=read.opt_string(tool.get("description"), f"{path}.description"),
        parameters=tool.get("input_schema"),
        strict=read.opt_boolean(tool.get("strict"), f"{path}.strict"),
        cache_control=tool.get("cache_control"),
        extra=rest(tool, ("name", "description", "input_schema", "strict", "cache_control")),
    )


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...] | None:
    if raw is None:
        return None
    return tuple(_decode_tool(item, f"tools[{i}]") for i, item in enumerate(read.array(raw, "tools")))


def _decode_tool_choice(raw: JSON, extra: Extra) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    obj = read.obj(raw, "tool_choice")
    mode = _CHOICE_MODES.get(string_or(obj.get("type")))
    if mode is None:
        raise Invalid("tool_choice.type must be one of auto, any, none, tool", "tool_choice.type")
    name = read.string(obj.get("name"), "tool_choice.name") if mode == "tool" else None
    disable = read.opt_boolean(obj.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    kept = rest(obj, ("type", "name", "disable_parallel_tool_use"))
    if kept:
        extra["tool_choice"] = kept
    return ToolChoice(mode=mode, name=name), None if disable is None else not disable  # type: ignore[arg-type]


def _decode_thinking_config(raw: JSON, extra: Extra) -> tuple[str | None, int | None]:
    if raw is None:
        return None, None
    obj = read.obj(raw, "thinking")
    mode = string_or(obj.get("type"))
    if mode not in _THINKING_MODES:
        raise Invalid("thinking.type must be one of enabled, adaptive, disabled", "thinking.type")
    kept = rest(obj, ("type", "budget_tokens"))
    if kept:
        extra["thinking"] = kept
    return mode, read.opt_integer(obj.get("budget_tokens"), "thinking.budget_tokens")


def _decode_output_config(raw: JSON, extra: Extra) -> tuple[str | None, ResponseFormat | None]:
    if raw is None:
        return None, None
    obj = read.obj(raw, "output_config")
    effort = read.opt_string(obj.get("effort"), "output_config.effort")
    kept = rest(obj, ("effort", "format"))
    fmt = obj.get("format")
    response_format = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        response_format = ResponseFormat(type="json_schema", schema=fmt.get("schema"))
        if len(fmt) > 2 or "schema" not in fmt:
            kept["format"] = rest(fmt, ("type", "schema"))
    elif fmt is not None:
        kept["format"] = fmt  # a format type with no canonical form: kept verbatim
    if kept or not obj:
        extra["output_config"] = kept
    return effort, response_format


def _decode_reasoning(obj: dict[str, JSON], extra: Extra) -> tuple[ReasoningConfig | None, ResponseFormat | None]:
    mode, budget = _decode_thinking_config(obj.get("thinking"), extra)
    effort, response_format = _decode_output_config(obj.get("output_config"), extra)
    if mode is None and effort is None:
        return None, response_format
    return ReasoningConfig(mode=mode, budget_tokens=budget, effort=effort), response_format  # type: ignore[arg-type]


def _decode_metadata(raw: JSON) -> tuple[str | None, dict[str, JSON] | None]:
    if raw is None:
        return None, None
    metadata = dict(read.obj(raw, "metadata"))
    user = metadata.get("user_id")
    if not isinstance(user, str):
        return None, metadata
    del metadata["user_id"]
    return user, metadata or None


def _decode_stop(raw: JSON) -> tuple[str, ...] | None:
    if raw is None:
        return None
    return tuple(read.string(s, f"stop_sequences[{i}]") for i, s in enumerate(read.array(raw, "stop_sequences")))


def _decode_body(body: JSON, model: str, origin: str) -> Request:
    obj = read.obj(body, "body")
    if "messages" not in obj:
        raise Invalid("messages is required", "messages")
    extra = {k: v for k, v in rest(obj, _TOP_LEVEL).items() if k not in ("model", "stream")}
    messages = read.array(obj["messages"], "messages")
    system, native = _decode_system(obj.get("system"))
    tool_choice, parallel = _decode_tool_choice(obj.get("tool_choice"), extra)
    reasoning, response_format = _decode_reasoning(obj, extra)
    user, metadata = _decode_metadata(obj.get("metadata"))
    return Request(
        model=model,
        messages=tuple(_decode_message(m, f"messages[{i}]") for i, m in enumerate(messages)),
        system=system,
        tools=_decode_tools(obj.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=read.opt_integer(obj.get("max_tokens"), "max_tokens"),
        temperature=read.opt_number(obj.get("temperature"), "temperature"),
        top_p=read.opt_number(obj.get("top_p"), "top_p"),
        top_k=read.opt_integer(obj.get("top_k"), "top_k"),
        stop=_decode_stop(obj.get("stop_sequences")),
        reasoning=reasoning,
        response_format=response_format,
        user=user,
        metadata=metadata,
        extra=extra,
        native=native,
        origin=origin,
    )


def decode_body(body: JSON, *, model: str, origin: str) -> Request:
    """A Messages body (``model`` and ``stream`` are the caller's business) as a canonical request.

    Raises ``RequestError`` naming the offending field when the body is malformed.
    """
    try:
        return _decode_body(body, model, origin)
    except Invalid as exc:
        raise RequestError(exc.message, param=exc.path) from None


# ---------------------------------------------------------------------------------------------
# Encoding a request body
# ---------------------------------------------------------------------------------------------

_CHOICE_TYPES = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}


def _encode_tool(tool: Tool | HostedTool, same: bool) -> dict[str, JSON] | None:
    if isinstance(tool, HostedTool):
        if tool.dialects & FAMILY and isinstance(tool.raw, dict):
            return tool.raw
        drop(NAME, "hosted tool of another vendor")
        return None
    out: dict[str, JSON] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    schema = tool.parameters
    if tool.kind == "custom":
        schema = CUSTOM_TOOL_SCHEMA  # freeform input travels as {"input": "<text>"}
    elif not same and isinstance(schema, dict) and "type" not in schema:
        schema = {"type": "object", **schema}
    elif not same and schema is None:
        schema = DEFAULT_INPUT_SCHEMA
    if schema is not None:
        out["input_schema"] = schema
    if same and tool.strict is not None:
        out["strict"] = tool.strict
    return finish_block(out, tool.cache_control, tool.extra, same)


def _encode_tool_choice(request: Request, same: bool, has_tools: bool) -> dict[str, JSON] | None:
    choice, parallel = request.tool_choice, request.parallel_tool_calls
    if not same and not has_tools:
        if choice is not None:
            drop(NAME, "tool_choice without tools")
        return None
    if choice is None and (parallel is None or (parallel and not same)):
        return None
    mode = choice.mode if choice is not None else "auto"
    out: dict[str, JSON] = {"type": _CHOICE_TYPES[mode]}
    if mode == "tool":
        out["name"] = choice.name if choice is not None else None
    if parallel is not None and mode != "none" and (same or not parallel):
        out["disable_parallel_tool_use"] = not parallel
    return out


def _fit_budget(budget: int, client_max: int | None, default_max: int) -> tuple[int, int]:
    """(budget_tokens, max_tokens) with budget < max_tokens, as documented in docs/dialects/claude.md."""
    budget = max(budget, MIN_THINKING_BUDGET)
    max_tokens = client_max if client_max is not None else default_max
    if budget < max_tokens:
        return budget, max_tokens
    if client_max is not None:
        budget = max(MIN_THINKING_BUDGET, client_max // 2)  # keep half of the client's limit for the answer
        if budget < client_max:
            return budget, client_max
    return budget, budget + max_tokens


def _foreign_budget(config: ReasoningConfig) -> int | None:
    if config.summary is not None:
        drop(NAME, "reasoning summary")
    if config.mode == "disabled":
        return None
    if config.budget_tokens is not None:
        return config.budget_tokens
    if config.effort is None:
        return EFFORT_BUDGETS["medium"] if config.mode in ("enabled", "adaptive") else None
    if config.effort not in EFFORT_BUDGETS:
        drop(NAME, f"reasoning effort {config.effort!r}")
        return None
    return EFFORT_BUDGETS[config.effort]


def _same_family_thinking(config: ReasoningConfig) -> dict[str, JSON] | None:
    if config.mode is None:
        return None
    out: dict[str, JSON] = {"type": config.mode}
    if config.budget_tokens is not None:
        out["budget_tokens"] = config.budget_tokens
    return out


def _encode_thinking_config(request: Request, options: EncodeOptions, same: bool) -> tuple[JSON, int]:
    max_tokens = request.max_tokens if request.max_tokens is not None else options.default_max_tokens
    config = request.reasoning
    if config is None:
        return None, max_tokens
    if same:
        return _same_family_thinking(config), max_tokens
    budget = _foreign_budget(config)
    if budget is None:
        return None, max_tokens
    choice = request.tool_choice
    if choice is not None and choice.mode in ("required", "tool"):
        drop(NAME, "reasoning (Claude cannot think while a tool use is forced)")
        return None, max_tokens
    budget, max_tokens = _fit_budget(budget, request.max_tokens, options.default_max_tokens)
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _encode_sampling(body: dict[str, JSON], request: Request, strip: bool) -> None:
    samplers = (("temperature", request.temperature), ("top_p", request.top_p), ("top_k", request.top_k))
    for name, value in samplers:
        if value is None:
            continue
        if strip:
            drop(NAME, f"{name} (Claude rejects it with thinking)")
        elif name == "temperature" and value > 1:
            log.debug("temperature %s clamped to 1.0 for %s", value, NAME)  # Claude's range is 0-1
            body[name] = 1.0
        else:
            body[name] = value
    if request.stop is not None:
        body["stop_sequences"] = list(request.stop)


def _encode_output_config(request: Request, same: bool) -> dict[str, JSON] | None:
    out: dict[str, JSON] = {}
    if same and request.reasoning is not None and request.reasoning.effort is not None:
        out["effort"] = request.reasoning.effort
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        out["format"] = {"type": "json_schema", "schema": fmt.schema}
    elif fmt is not None and fmt.type == "json_object":
        drop(NAME, "response_format json_object")
    return out or None


def _encode_metadata(request: Request, same: bool) -> dict[str, JSON] | None:
    metadata: dict[str, JSON] = dict(request.metadata or {}) if same else {}
    if not same and request.metadata:
        drop(NAME, "metadata (Claude accepts only user_id)")
    if request.user is not None:
        metadata["user_id"] = request.user
    return metadata if metadata or (same and request.metadata is not None) else None


def _drop_foreign_fields(request: Request) -> None:
    unsupported = {
        "seed": request.seed,
        "store": request.store,
        "previous_response_id": request.previous_response_id,
    }
    for name, value in unsupported.items():
        if value is not None:
            drop(NAME, name)
    for name in request.extra:
        drop(NAME, name)


def _put(body: dict[str, JSON], key: str, value: JSON) -> None:
    if value is not None:
        body[key] = value


def encode_body(request: Request, options: EncodeOptions) -> dict[str, JSON]:
    """The Messages body for ``request`` of any origin, without ``model`` and ``stream``."""
    if request.n is not None and request.n > 1:
        raise RequestError("n > 1 is not supported by a claude backend", param="n")
    same = request.origin in FAMILY
    system, messages = encode_conversation(request, same)
    thinking, max_tokens = _encode_thinking_config(request, options, same)
    body: dict[str, JSON] = {"max_tokens": max_tokens}
    _put(body, "system", system)
    body["messages"] = messages
    if request.tools is not None:
        tools = [t for t in (_encode_tool(tool, same) for tool in request.tools) if t is not None]
        if tools or same:
            body["tools"] = tools
    _put(body, "tool_choice", _encode_tool_choice(request, same, bool(body.get("tools"))))
    _encode_sampling(body, request, strip=thinking is not None and thinking.get("type") != "disabled" and not same)
    _put(body, "thinking", thinking)
    _put(body, "output_config", _encode_output_config(request, same))
    _put(body, "metadata", _encode_metadata(request, same))
    if same:
        envelope = ("model", "stream", *BEDROCK_ENVELOPE)
        merge_extra(body, {k: v for k, v in request.extra.items() if k not in envelope}, nested=True)
    else:
        _drop_foreign_fields(request)
    return body
