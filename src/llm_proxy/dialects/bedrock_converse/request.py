"""The Converse request body: ``decode_request`` (wire -> canonical) and ``encode_request`` (canonical -> wire).

The model id is the path's (``/model/{modelId}/converse``), streaming is the path's too (``converse-stream``).
``inferenceConfig`` holds the sampling fields, ``toolConfig`` the tools and the tool choice, and
``additionalModelRequestFields`` the model's own fields: Claude's ``thinking`` (the canonical reasoning
config) and ``top_k`` are read from there; the rest stays in ``extra``, with every other field without a
canonical home (``additionalModelResponseFieldPaths``, ``guardrailConfig``, ...), for the Converse round trip.
Mapping tables: ``docs/dialects/bedrock-converse.md``.
"""

from __future__ import annotations

from dataclasses import replace

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    Message,
    ReasoningConfig,
    Request,
    Text,
    Tool,
    ToolChoice,
)
from llm_proxy.dialects import claude
from llm_proxy.dialects.base import EncodeOptions, drop, log
from llm_proxy.dialects.bedrock_converse.blocks import decode_blocks, encode_parts, union_member
from llm_proxy.dialects.bedrock_converse.wire import NAME, OWN, cache_control, cache_point, read
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.errors import RequestError

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

_TOP_LEVEL = (
    "modelId",
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "requestMetadata",
)
_THINKING_MODES = frozenset({"enabled", "adaptive", "disabled"})
SYSTEM_BLOCK = "block"
"""``Text.extra`` key of a system block that is not text (``guardContent``): kept whole for the round trip."""


def _decode_message(raw: JSON, path: str) -> Message:
    obj = read.obj(raw, path)
    role = obj.get("role")
    if role not in ("user", "assistant"):
        raise Invalid(f"{path}.role must be one of user, assistant", f"{path}.role")
    content = decode_blocks(obj.get("content"), f"{path}.content")
    return Message(role=role, content=content, extra=rest(obj, ("role", "content")))


def _decode_system(raw: JSON) -> tuple[Text, ...] | None:
    if raw is None:
        return None
    texts: list[Text] = []
    for i, item in enumerate(read.array(raw, "system")):
        block = read.obj(item, f"system[{i}]")
        key, value = union_member(block, f"system[{i}]")
        if key == "text":
            texts.append(Text(text=read.string(value, f"system[{i}].text")))
            continue
        control = cache_control(value) if key == "cachePoint" else None
        if control is not None and texts and texts[-1].cache_control is None and not texts[-1].extra:
            texts[-1] = replace(texts[-1], cache_control=control)
        else:
            texts.append(Text(text="", extra={SYSTEM_BLOCK: block}))  # guardContent: no text of its own
    return tuple(texts)


def _decode_inference(raw: JSON, extra: Extra) -> dict[str, JSON]:
    if raw is None:
        return {}
    obj = read.obj(raw, "inferenceConfig")
    kept = rest(obj, ("maxTokens", "temperature", "topP", "stopSequences"))
    if kept or not obj:
        extra["inferenceConfig"] = kept
    stop = obj.get("stopSequences")
    sequences = None
    if stop is not None:
        items = read.array(stop, "inferenceConfig.stopSequences")
        sequences = tuple(read.string(s, f"inferenceConfig.stopSequences[{i}]") for i, s in enumerate(items))
    return {
        "max_tokens": read.opt_integer(obj.get("maxTokens"), "inferenceConfig.maxTokens"),
        "temperature": read.opt_number(obj.get("temperature"), "inferenceConfig.temperature"),
        "top_p": read.opt_number(obj.get("topP"), "inferenceConfig.topP"),
        "stop": sequences,
    }


def _decode_tool(block: dict[str, JSON], path: str) -> Tool | HostedTool:
    key, value = union_member(block, path)
    if key != "toolSpec":
        return HostedTool(dialects=OWN, raw=block)  # systemTool, and cache points with nothing before them
    spec = read.obj(value, f"{path}.toolSpec")
    schema = spec.get("inputSchema")
    parameters = None
    spec_extra = rest(spec, ("name", "description", "inputSchema", "strict"))
    if schema is not None:
        schema_obj = read.obj(schema, f"{path}.toolSpec.inputSchema")
        if set(schema_obj) == {"json"}:
            parameters = schema_obj["json"]
        else:
            spec_extra["inputSchema"] = schema_obj
    return Tool(
        name=read.string(spec.get("name"), f"{path}.toolSpec.name"),
        description=read.opt_string(spec.get("description"), f"{path}.toolSpec.description"),
        parameters=parameters,
        strict=read.opt_boolean(spec.get("strict"), f"{path}.toolSpec.strict"),
        extra=spec_extra,
    )


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...]:
    tools: list[Tool | HostedTool] = []
    for i, item in enumerate(read.array(raw, "toolConfig.tools")):
        block = read.obj(item, f"toolConfig.tools[{i}]")
        if set(block) == {"cachePoint"}:
            control = cache_control(block["cachePoint"])
            last = tools[-1] if tools else None
            if control is not None and isinstance(last, Tool) and last.cache_control is None:
                tools[-1] = replace(last, cache_control=control)
                continue
        tools.append(_decode_tool(block, f"toolConfig.tools[{i}]"))
    return tuple(tools)


_CHOICES = {"auto": "auto", "any": "required", "tool": "tool"}


def _decode_tool_choice(raw: JSON) -> ToolChoice | None:
    if raw is None:
        return None
    key, value = union_member(read.obj(raw, "toolConfig.toolChoice"), "toolConfig.toolChoice")
    mode = _CHOICES.get(key)
    if mode is None:
        raise Invalid("toolConfig.toolChoice must be one of auto, any, tool", "toolConfig.toolChoice")
    if mode != "tool":
        return ToolChoice(mode=mode)  # type: ignore[arg-type]
    name = read.string(read.obj(value, "toolConfig.toolChoice.tool").get("name"), "toolConfig.toolChoice.tool.name")
    return ToolChoice(mode="tool", name=name)


def _decode_tool_config(raw: JSON, extra: Extra) -> tuple[tuple[Tool | HostedTool, ...] | None, ToolChoice | None]:
    if raw is None:
        return None, None
    obj = read.obj(raw, "toolConfig")
    kept = rest(obj, ("tools", "toolChoice"))
    if kept:
        extra["toolConfig"] = kept
    tools = _decode_tools(obj["tools"]) if obj.get("tools") is not None else None
    return tools, _decode_tool_choice(obj.get("toolChoice"))


def _decode_model_fields(raw: JSON, extra: Extra) -> tuple[ReasoningConfig | None, int | None]:
    """Claude's ``thinking`` and ``top_k`` from ``additionalModelRequestFields``; the rest is kept in ``extra``."""
    if raw is None:
        return None, None
    obj = read.obj(raw, "additionalModelRequestFields")
    kept = rest(obj, ("thinking", "top_k"))
    reasoning = None
    thinking = obj.get("thinking")
    mode = thinking.get("type") if isinstance(thinking, dict) else None
    if isinstance(thinking, dict) and isinstance(mode, str) and mode in _THINKING_MODES:
        budget = read.opt_integer(thinking.get("budget_tokens"), "additionalModelRequestFields.thinking.budget_tokens")
        reasoning = ReasoningConfig(mode=mode, budget_tokens=budget)  # type: ignore[arg-type]
        thinking_kept = rest(thinking, ("type", "budget_tokens"))
        if thinking_kept:
            kept["thinking"] = thinking_kept
    elif thinking is not None:
        kept["thinking"] = thinking  # another model's shape: verbatim
    top_k = obj.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
        kept["top_k"], top_k = top_k, None
    if kept or not obj:
        extra["additionalModelRequestFields"] = kept
    return reasoning, top_k


def _decode_metadata(raw: JSON) -> dict[str, JSON] | None:
    if raw is None:
        return None
    obj = read.obj(raw, "requestMetadata")
    for key, value in obj.items():
        read.string(value, f"requestMetadata.{key}")
    return dict(obj)


def _decode(body: JSON, model: str) -> Request:
    obj = read.obj(body, "body")
    if "messages" not in obj:
        raise Invalid("messages is required", "messages")
    extra = rest(obj, _TOP_LEVEL, drop_null=("modelId",))
    extra.pop("modelId", None)
    messages = read.array(obj["messages"], "messages")
    inference = _decode_inference(obj.get("inferenceConfig"), extra)
    tools, tool_choice = _decode_tool_config(obj.get("toolConfig"), extra)
    reasoning, top_k = _decode_model_fields(obj.get("additionalModelRequestFields"), extra)
    return Request(
        model=model,
        messages=tuple(_decode_message(m, f"messages[{i}]") for i, m in enumerate(messages)),
        system=_decode_system(obj.get("system")),
        tools=tools,
        tool_choice=tool_choice,
        top_k=top_k,
        reasoning=reasoning,
        metadata=_decode_metadata(obj.get("requestMetadata")),
        extra=extra,
        origin=NAME,
        **inference,
    )


def decode_request(body: JSON, path_model: str | None) -> Request:
    """A Converse body as a canonical request for the path's model id. ``stream`` is the path's business."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    if not path_model:
        raise RequestError("the model id must be in the path: /model/{modelId}/converse")
    try:
        return _decode(body, path_model)
    except Invalid as exc:
        raise exc.request_error() from None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _encode_system(texts: list[Text], same: bool) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    for text in texts:
        if same and SYSTEM_BLOCK in text.extra:
            out.append(text.extra[SYSTEM_BLOCK])
            continue
        if not text.text:
            continue  # Converse rejects blank system text
        out.append({"text": text.text})
        point = cache_point(text.cache_control)
        if point is not None:
            out.append(point)
    return out


def _conversation(request: Request, same: bool) -> tuple[list[Text], list[dict[str, JSON]]]:
    """System texts (hoisted system/developer messages included) and the user/assistant turns.

    Converse has a top-level system prompt and only user/assistant turns: OpenAI ``tool`` messages join one
    user turn (with the user message right after them), tool results first as Claude needs them.
    """
    system = list(request.system or ())
    turns: list[dict[str, JSON]] = []
    results: list[dict[str, JSON]] | None = None  # the content of a user turn made from tool messages, still open
    for message in request.messages:
        if message.role in ("system", "developer"):
            system.extend(p for p in message.content if isinstance(p, Text))
            if any(not isinstance(p, Text) for p in message.content):
                drop(NAME, "non-text content in a system message")
            continue
        blocks = encode_parts(message.content, same)
        if message.role == "tool":
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.extend(blocks)
            continue
        if message.role == "user" and results is not None:
            results.extend(blocks)
            results.sort(key=lambda b: "toolResult" not in b)
            results = None
            continue
        results = None
        if not blocks:
            log.debug("dropped a %s message with no content left toward %s", message.role, NAME)
            continue
        turn: dict[str, JSON] = {"role": message.role, "content": blocks}
        if same:
            merge_extra(turn, message.extra)
        turns.append(turn)
    return system, [t for t in turns if t["content"]]


def _encode_tool(tool: Tool | HostedTool, same: bool) -> list[dict[str, JSON]]:
    if isinstance(tool, HostedTool):
        if NAME in tool.dialects and isinstance(tool.raw, dict):
            return [tool.raw]
        drop(NAME, "hosted tool of another vendor")
        return []
    spec: dict[str, JSON] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    schema = tool.parameters
    if tool.kind == "custom":
        schema = claude.CUSTOM_TOOL_SCHEMA  # freeform input travels as {"input": "<text>"}
    elif not same and schema is None:
        schema = claude.DEFAULT_INPUT_SCHEMA
    elif not same and isinstance(schema, dict) and "type" not in schema:
        schema = {"type": "object", **schema}  # Claude on Bedrock wants an object schema
    if schema is not None:
        spec["inputSchema"] = {"json": schema}
    if same and tool.strict is not None:
        spec["strict"] = tool.strict
    if same:
        merge_extra(spec, tool.extra)
    point = cache_point(tool.cache_control)
    return [{"toolSpec": spec}] + ([point] if point else [])


def _encode_tool_config(request: Request, same: bool) -> dict[str, JSON] | None:
    tools = [block for tool in request.tools or () for block in _encode_tool(tool, same)]
    config: dict[str, JSON] = {}
    if request.tools is not None and (tools or same):
        config["tools"] = tools
    choice = request.tool_choice
    if choice is not None and choice.mode == "none":
        drop(NAME, "tool_choice none (Converse has none; the tools stay declared)")
    elif choice is not None and (tools or same):
        key = {"auto": "auto", "required": "any", "tool": "tool"}[choice.mode]
        config["toolChoice"] = {key: {"name": choice.name} if choice.mode == "tool" else {}}
    if same:
        merge_extra(config, request.extra.get("toolConfig") or {})
    if request.parallel_tool_calls is not None and not same:
        drop(NAME, "parallel_tool_calls")
    return config or None


def _foreign_budget(config: ReasoningConfig) -> int | None:
    if config.mode == "disabled":
        return None
    if config.budget_tokens is not None:
        return config.budget_tokens
    if config.effort is None:
        return claude.EFFORT_BUDGETS["medium"] if config.mode in ("enabled", "adaptive") else None
    if config.effort not in claude.EFFORT_BUDGETS:
        drop(NAME, f"reasoning effort {config.effort!r}")
        return None
    return claude.EFFORT_BUDGETS[config.effort]


def _fit(budget: int, client_max: int | None, default_max: int) -> tuple[int, int]:
    """(budget_tokens, maxTokens) with the budget below the limit, as toward Claude (docs/dialects/claude.md)."""
    budget = max(budget, claude.MIN_THINKING_BUDGET)
    limit = client_max if client_max is not None else default_max
    if budget < limit:
        return budget, limit
    if client_max is not None:
        half = max(claude.MIN_THINKING_BUDGET, client_max // 2)
        if half < client_max:
            return half, client_max
    return budget, budget + limit


def _thinking(request: Request, options: EncodeOptions, same: bool) -> tuple[dict[str, JSON] | None, int | None]:
    """The ``thinking`` field of ``additionalModelRequestFields`` and the ``maxTokens`` to send."""
    config = request.reasoning
    if config is None:
        return None, request.max_tokens
    if same or (request.origin in claude.FAMILY and config.mode is not None):
        if config.mode is None:
            return None, request.max_tokens
        out: dict[str, JSON] = {"type": config.mode}
        if config.budget_tokens is not None:
            out["budget_tokens"] = config.budget_tokens
        return out, request.max_tokens
    budget = _foreign_budget(config)
    choice = request.tool_choice
    if budget is not None and choice is not None and choice.mode in ("required", "tool"):
        drop(NAME, "reasoning (Claude cannot think while a tool use is forced)")
        budget = None
    if budget is None:
        return None, request.max_tokens
    budget, max_tokens = _fit(budget, request.max_tokens, options.default_max_tokens)
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _inference(request: Request, max_tokens: int | None, thinking: bool, same: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    if max_tokens is not None:
        out["maxTokens"] = max_tokens
    for wire, value in (("temperature", request.temperature), ("topP", request.top_p)):
        if value is None:
            continue
        if thinking and not same:
            drop(NAME, f"{wire} (Claude rejects it with thinking)")
        else:
            out[wire] = value
    if request.stop is not None:
        out["stopSequences"] = list(request.stop)
    if same:
        merge_extra(out, request.extra.get("inferenceConfig") or {})
    return out


def _drop_foreign(request: Request) -> None:
    unsupported = {
        "response_format": request.response_format,
        "user": request.user,
        "seed": request.seed,
        "store": request.store,
        "previous_response_id": request.previous_response_id,
    }
    for name, value in unsupported.items():
        if value is not None:
            drop(NAME, name)
    for name in request.extra:
        drop(NAME, name)


def encode_request(request: Request, options: EncodeOptions) -> dict[str, JSON]:
    """The Converse body for ``request`` of any origin (no ``modelId``: it goes in the path)."""
    if request.n is not None and request.n > 1:
        raise RequestError("n > 1 is not supported by a bedrock-converse backend", param="n")
    same = request.origin == NAME
    texts, turns = _conversation(request, same)
    body: dict[str, JSON] = {"messages": turns}
    system = _encode_system(texts, same)
    if system or (same and request.system is not None):
        body["system"] = system
    thinking, max_tokens = _thinking(request, options, same)
    inference = _inference(request, max_tokens, thinking is not None and thinking.get("type") != "disabled", same)
    if inference or (same and isinstance(request.extra.get("inferenceConfig"), dict)):
        body["inferenceConfig"] = inference
    tool_config = _encode_tool_config(request, same)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    fields: dict[str, JSON] = {}
    if thinking is not None:
        fields["thinking"] = thinking
    if request.top_k is not None:
        fields["top_k"] = request.top_k
    if same:
        merge_extra(fields, request.extra.get("additionalModelRequestFields") or {}, nested=True)
    if fields or (same and isinstance(request.extra.get("additionalModelRequestFields"), dict)):
        body["additionalModelRequestFields"] = fields
    if request.metadata is not None and (same or all(isinstance(v, str) for v in request.metadata.values())):
        body["requestMetadata"] = request.metadata
    if same:
        # the sections merged above; a section sent as null is kept as it came
        nested = ("inferenceConfig", "toolConfig", "additionalModelRequestFields")
        merge_extra(body, {k: v for k, v in request.extra.items() if k not in nested or v is None})
    else:
        _drop_foreign(request)
    return body
