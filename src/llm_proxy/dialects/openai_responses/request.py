"""A Responses request body, both ways: its top-level fields (instructions, tools, tool choice, limits,
sampling, reasoning, text format, storage); the ``input`` items are ``items``' business.

Decoding keeps every field without a canonical home in ``extra`` so that a Responses request re-encodes to
an equal body. A request of another origin also asks for encrypted reasoning (the proxy is stateless), sets
``store: false`` and drops what Responses has no place for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.dialects.openai_responses.items import decode_input, encode_messages
from llm_proxy.dialects.openai_responses.wire import (
    FAMILY,
    NAME,
    custom_names,
    read,
)
from llm_proxy.errors import RequestError

# ---------------------------------------------------------------------------------------------
# Decoding a client's request
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
    messages, input_form = decode_input(doc.get("input"))
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
        native={"input": input_form} if input_form is not None else {},
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


# ---------------------------------------------------------------------------------------------
# Encoding a request for a Responses upstream, from any origin
# ---------------------------------------------------------------------------------------------


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
        merge_extra(body, request.extra)
    return body


def _encode_input_into(body: dict[str, JSON], request: Request, same: bool) -> None:
    form = request.native.get("input") if same else None
    if form == "absent" and not request.messages:
        return
    if form == "string" and len(request.messages) == 1:
        only = request.messages[0]
        if (
            only.role == "user"
            and only.native.get("content") == "string"
            and len(only.content) == 1
            and isinstance(only.content[0], Text)
        ):
            body["input"] = only.content[0].text
            return
    body["input"] = encode_messages(request.messages, same)


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
