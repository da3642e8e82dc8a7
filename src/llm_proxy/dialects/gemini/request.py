"""The generateContent request body: ``decode_request`` (wire -> canonical) and ``encode_request`` (back).

The model is the path's (``models/{model}:generateContent``); streaming is the path's too
(``:streamGenerateContent``), and the client's ``alt=sse`` query parameter is kept in ``native["alt"]`` so the
answer comes back in the framing it asked for. ``contents`` are turns of role ``user`` or ``model``;
``functionResponse`` parts sit in user turns (as Claude's tool results do). ``generationConfig`` holds the
sampling, output and thinking settings; whatever has no canonical field stays in ``extra`` for the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping

from llm_proxy.canonical import (
    JSON,
    Extra,
    HostedTool,
    Message,
    Part,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
    ToolResult,
)
from llm_proxy.dialects.base import EncodeOptions, drop
from llm_proxy.dialects.gemini.parts import Ids, PartEncoder, decode_parts
from llm_proxy.dialects.gemini.wire import FAMILY, NAME, read
from llm_proxy.dialects.jsonread import Invalid, merge_extra, put, rest
from llm_proxy.errors import RequestError

_TOP_LEVEL = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig")
_GENERATION = (
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
)
_CHOICE_MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none"}
_CHOICE_NAMES = {"auto": "AUTO", "required": "ANY", "none": "NONE", "tool": "ANY"}
EFFORT_BUDGETS: dict[str, int] = {"none": 0, "minimal": 512, "low": 2048, "medium": 8192, "high": 24576}
"""OpenAI reasoning effort -> Gemini ``thinkingBudget`` (xhigh and max: the high budget)."""
DYNAMIC_BUDGET = -1
"""``thinkingBudget: -1``: the model decides how much to think."""

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _decode_contents(raw: JSON) -> tuple[Message, ...]:
    ids = Ids()
    messages: list[Message] = []
    for i, item in enumerate(read.array(raw, "contents")):
        path = f"contents[{i}]"
        content = read.obj(item, path)
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise Invalid(f"{path}.role must be user or model", f"{path}.role")
        if role == "model":
            ids.new_turn()
        parts = decode_parts(content.get("parts", []), f"{path}.parts", ids)
        extra = rest(content, ("role", "parts"))
        if role != "user":
            extra["$role"] = role
        if "role" not in content:
            extra["$role"] = "absent"
        messages.append(Message(role="assistant" if role == "model" else "user", content=parts, extra=extra))
    return tuple(messages)


def _decode_system(raw: JSON, extra: Extra) -> tuple[Text, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        extra["$system"] = "string"
        return (Text(text=raw),)
    content = read.obj(raw, "systemInstruction")
    kept = rest(content, ("parts",))
    if kept:
        extra["$systemInstruction"] = kept
    texts: list[Text] = []
    for i, item in enumerate(read.array(content.get("parts", []), "systemInstruction.parts")):
        part = read.obj(item, f"systemInstruction.parts[{i}]")
        text = read.string(part.get("text"), f"systemInstruction.parts[{i}].text")
        texts.append(Text(text=text, extra=rest(part, ("text",))))
    return tuple(texts)


def _normalize_schema(schema: JSON) -> JSON:
    """An OpenAPI-style schema (``"type": "OBJECT"``) as JSON Schema (lower-case types), for other vendors."""
    if isinstance(schema, dict):
        out = {k: _normalize_schema(v) for k, v in schema.items()}
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = kind.lower()
        return out
    if isinstance(schema, list):
        return [_normalize_schema(v) for v in schema]
    return schema


def _decode_declaration(raw: JSON, path: str) -> Tool:
    decl = read.obj(raw, path)
    extra = rest(decl, ("name", "description", "parameters", "parametersJsonSchema"))
    if "parametersJsonSchema" in decl:
        parameters = decl["parametersJsonSchema"]
        extra["$schema"] = "parametersJsonSchema"
    else:
        parameters = _normalize_schema(decl.get("parameters"))
        if parameters != decl.get("parameters"):
            extra["$parameters"] = decl.get("parameters")
    return Tool(
        name=read.string(decl.get("name"), f"{path}.name"),
        description=read.opt_string(decl.get("description"), f"{path}.description"),
        parameters=parameters,
        extra=extra,
    )


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...] | None:
    if raw is None:
        return None
    tools: list[Tool | HostedTool] = []
    for i, item in enumerate(read.array(raw, "tools")):
        obj = read.obj(item, f"tools[{i}]")
        decls = obj.get("functionDeclarations")
        if decls is not None:
            path = f"tools[{i}].functionDeclarations"
            tools.extend(_decode_declaration(d, f"{path}[{j}]") for j, d in enumerate(read.array(decls, path)))
        others = rest(obj, ("functionDeclarations",))
        if others:
            tools.append(HostedTool(dialects=FAMILY, raw=others))  # googleSearch, codeExecution, ...
    return tuple(tools)


def _decode_tool_config(raw: JSON, extra: Extra) -> ToolChoice | None:
    if raw is None:
        return None
    obj = read.obj(raw, "toolConfig")
    kept = rest(obj, ("functionCallingConfig",))
    config = obj.get("functionCallingConfig")
    choice = None
    if isinstance(config, dict):
        mode = config.get("mode")
        names = config.get("allowedFunctionNames")
        if mode == "ANY" and isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
            choice = ToolChoice(mode="tool", name=names[0])
            inner = rest(config, ("mode", "allowedFunctionNames"))
        elif isinstance(mode, str) and mode in _CHOICE_MODES:
            choice = ToolChoice(mode=_CHOICE_MODES[mode])  # type: ignore[arg-type]
            inner = rest(config, ("mode",))
        else:
            inner = config
        if inner:
            kept["functionCallingConfig"] = inner
    elif config is not None:
        kept["functionCallingConfig"] = config
    if kept or choice is None:
        extra["toolConfig"] = kept
    return choice


def _decode_thinking(raw: JSON, extra: Extra) -> ReasoningConfig | None:
    if raw is None:
        return None
    obj = read.obj(raw, "generationConfig.thinkingConfig")
    budget = read.opt_integer(obj.get("thinkingBudget"), "generationConfig.thinkingConfig.thinkingBudget")
    include = read.opt_boolean(obj.get("includeThoughts"), "generationConfig.thinkingConfig.includeThoughts")
    level = read.opt_string(obj.get("thinkingLevel"), "generationConfig.thinkingConfig.thinkingLevel")
    kept = rest(obj, ("thinkingBudget", "includeThoughts", "thinkingLevel"))
    if include is False:
        kept["includeThoughts"] = False
    if kept:
        extra["$thinkingConfig"] = kept
    mode = None
    if budget is not None:
        mode = "adaptive" if budget == DYNAMIC_BUDGET else "disabled" if budget == 0 else "enabled"
    return ReasoningConfig(
        mode=mode,  # type: ignore[arg-type]
        budget_tokens=budget if budget is not None and budget >= 0 else None,
        effort=level.lower() if level is not None else None,
        summary="auto" if include else None,
    )


def _decode_format(config: dict[str, JSON], native: dict[str, JSON]) -> ResponseFormat | None:
    mime = read.opt_string(config.get("responseMimeType"), "generationConfig.responseMimeType")
    if "responseJsonSchema" in config:
        schema = config["responseJsonSchema"]
    elif "responseSchema" in config:
        schema = _normalize_schema(config["responseSchema"])
        native["schema"] = "responseSchema"
        if schema != config["responseSchema"]:
            native["responseSchema"] = config["responseSchema"]
    else:
        schema = None
    if mime is None:
        if schema is not None:
            native["mime"] = "absent"
            return ResponseFormat(type="json_schema", schema=schema)
        return None
    if mime == "application/json":
        return (
            ResponseFormat(type="json_schema", schema=schema)
            if schema is not None
            else ResponseFormat(type="json_object")
        )
    if mime == "text/plain" and schema is None:
        return ResponseFormat(type="text")
    native["mime"] = mime
    return ResponseFormat(type="json_schema", schema=schema) if schema is not None else None


def _decode_stop(raw: JSON) -> tuple[str, ...] | None:
    if raw is None:
        return None
    path = "generationConfig.stopSequences"
    return tuple(read.string(s, f"{path}[{i}]") for i, s in enumerate(read.array(raw, path)))


def _decode_body(body: JSON, model: str, alt: str | None) -> Request:
    obj = read.obj(body, "body")
    if "generateContentRequest" in obj:  # countTokens may wrap the whole request
        return _decode_body(obj["generateContentRequest"], model, alt)
    if "contents" not in obj:
        raise Invalid("contents is required", "contents")
    extra = rest(obj, _TOP_LEVEL)
    native: dict[str, JSON] = {"alt": alt} if alt else {}
    config = read.obj(obj.get("generationConfig", {}), "generationConfig")
    if "generationConfig" in obj:
        kept = rest(config, _GENERATION)
        extra["$generationConfig"] = kept
    count = read.opt_integer(config.get("candidateCount"), "generationConfig.candidateCount")
    if count is not None and count > 1:
        raise Invalid("candidateCount greater than 1 is not supported by this proxy", "generationConfig.candidateCount")
    return Request(
        model=model,
        messages=_decode_contents(obj["contents"]),
        system=_decode_system(obj.get("systemInstruction"), extra),
        tools=_decode_tools(obj.get("tools")),
        tool_choice=_decode_tool_config(obj.get("toolConfig"), extra),
        max_tokens=read.opt_integer(config.get("maxOutputTokens"), "generationConfig.maxOutputTokens"),
        temperature=read.opt_number(config.get("temperature"), "generationConfig.temperature"),
        top_p=read.opt_number(config.get("topP"), "generationConfig.topP"),
        top_k=read.opt_integer(config.get("topK"), "generationConfig.topK"),
        stop=_decode_stop(config.get("stopSequences")),
        n=count,
        seed=read.opt_integer(config.get("seed"), "generationConfig.seed"),
        reasoning=_decode_thinking(config.get("thinkingConfig"), extra),
        response_format=_decode_format(config, native),
        extra=extra,
        native=native,
        origin=NAME,
    )


def decode_request(body: JSON, path_model: str | None, query: Mapping[str, str] | None) -> Request:
    """A generateContent (or countTokens) body for the path's model. Raises ``RequestError`` naming the field."""
    if not path_model:
        raise RequestError("the model must be in the path: /v1beta/models/{model}:generateContent")
    alt = (query or {}).get("alt")
    try:
        return _decode_body(body, path_model.removeprefix("models/"), alt)
    except Invalid as exc:
        raise RequestError(exc.message, param=exc.path) from None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _system_text(request: Request, same: bool) -> tuple[list[Text], list[Message]]:
    """The system prompt's texts (foreign system and developer turns hoisted into it) and the other turns."""
    texts = list(request.system or ())
    turns: list[Message] = []
    for message in request.messages:
        if message.role in ("system", "developer") and not same:
            texts.extend(p for p in message.content if isinstance(p, Text))
        else:
            turns.append(message)
    return texts, turns


def _encode_system(request: Request, texts: list[Text], same: bool) -> JSON:
    if not texts:
        return None
    if same and request.extra.get("$system") == "string" and len(texts) == 1:
        return texts[0].text
    parts = [merge_extra({"text": t.text}, t.extra) if same else {"text": t.text} for t in texts]
    out: dict[str, JSON] = {"parts": parts}
    kept = request.extra.get("$systemInstruction") if same else None
    if isinstance(kept, dict):
        merge_extra(out, kept)
    return out


def encode_contents(messages: list[Message], same: bool, *, toward_client: bool = False) -> list[JSON]:
    encoder = PartEncoder(same=same, toward_client=toward_client)
    contents: list[dict[str, JSON]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = encoder.encode_all(message.content)
        if same:
            content: dict[str, JSON] = {}
            wire_role = message.extra.get("$role", role)
            if wire_role != "absent":
                content["role"] = wire_role
            content["parts"] = parts
            merge_extra(content, {k: v for k, v in message.extra.items() if not k.startswith("$")})
            contents.append(content)
            continue
        if not parts:
            continue
        tool_turn = message.role == "tool" or all(isinstance(p, ToolResult) for p in message.content)
        previous = contents[-1] if contents else None
        if previous is not None and previous["role"] == role and (tool_turn or message.role == "tool"):
            previous["parts"] = [*previous["parts"], *parts]  # parallel results answer in one turn
            continue
        contents.append({"role": role, "parts": parts})
    return list(contents)


def _encode_tools(request: Request, same: bool) -> list[JSON] | None:
    if request.tools is None:
        return None
    groups: list[JSON] = []
    decls: list[JSON] | None = None
    for tool in request.tools:
        if isinstance(tool, HostedTool):
            decls = None
            if tool.dialects & FAMILY and isinstance(tool.raw, dict):
                groups.append(tool.raw)
            else:
                drop(NAME, "hosted tool of another vendor")
            continue
        if decls is None:
            decls = []
            groups.append({"functionDeclarations": decls})
        decls.append(_encode_declaration(tool, same))
    return groups if groups or same else None


def _encode_declaration(tool: Tool, same: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {"name": tool.name}
    put(out, "description", tool.description)
    if same and "$parameters" in tool.extra:
        out["parameters"] = tool.extra["$parameters"]
    elif same and tool.extra.get("$schema") != "parametersJsonSchema":
        put(out, "parameters", tool.parameters)
    elif tool.kind == "custom":
        out["parametersJsonSchema"] = {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
        }
    else:
        put(out, "parametersJsonSchema", tool.parameters)
    if same:
        merge_extra(out, {k: v for k, v in tool.extra.items() if not k.startswith("$")})
    return out


def _encode_tool_config(request: Request, same: bool) -> JSON:
    kept = request.extra.get("toolConfig") if same else None
    choice = request.tool_choice
    if choice is None:
        return kept
    config: dict[str, JSON] = {"mode": _CHOICE_NAMES[choice.mode]}
    if choice.mode == "tool" and choice.name is not None:
        config["allowedFunctionNames"] = [choice.name]
    out: dict[str, JSON] = {"functionCallingConfig": config}
    if isinstance(kept, dict):
        merge_extra(out, kept, nested=True)
    return out


def _encode_thinking(request: Request, same: bool) -> JSON:
    config = request.reasoning
    kept = request.extra.get("$thinkingConfig") if same else None
    if config is None:
        return kept
    out: dict[str, JSON] = {}
    if same:
        if config.mode == "adaptive":
            out["thinkingBudget"] = DYNAMIC_BUDGET
        elif config.budget_tokens is not None:
            out["thinkingBudget"] = config.budget_tokens
        if config.summary is not None:
            out["includeThoughts"] = True
        if config.effort is not None:
            out["thinkingLevel"] = config.effort
        if isinstance(kept, dict):
            merge_extra(out, kept)
        return out
    if config.mode == "disabled" or config.effort == "none":
        return {"thinkingBudget": 0}
    if config.budget_tokens is not None:
        out["thinkingBudget"] = config.budget_tokens
    elif config.effort is not None:
        out["thinkingBudget"] = EFFORT_BUDGETS.get(config.effort, EFFORT_BUDGETS["high"])
    else:
        out["thinkingBudget"] = DYNAMIC_BUDGET
    out["includeThoughts"] = True  # a client that asks for reasoning shows it
    return out


def _encode_format(config: dict[str, JSON], request: Request, same: bool) -> None:
    fmt = request.response_format
    if fmt is None:
        return
    native = request.native if same else {}
    mime = native.get("mime")
    if mime != "absent":
        plain = fmt.type == "text"
        config["responseMimeType"] = mime if isinstance(mime, str) else "text/plain" if plain else "application/json"
    if fmt.type == "json_schema":
        if native.get("schema") == "responseSchema":
            config["responseSchema"] = native.get("responseSchema", fmt.schema)
        else:
            config["responseJsonSchema"] = fmt.schema


def _generation_config(request: Request, options: EncodeOptions, same: bool) -> dict[str, JSON] | None:
    config: dict[str, JSON] = {}
    put(config, "temperature", request.temperature)
    put(config, "topP", request.top_p)
    put(config, "topK", request.top_k)
    put(config, "maxOutputTokens", request.max_tokens)
    if request.stop is not None:
        config["stopSequences"] = list(request.stop)
    put(config, "candidateCount", request.n)
    put(config, "seed", request.seed)
    _encode_format(config, request, same)
    put(config, "thinkingConfig", _encode_thinking(request, same))
    kept = request.extra.get("$generationConfig") if same else None
    if isinstance(kept, dict):
        merge_extra(config, kept)
        return config
    return config or None


def encode_request(request: Request, options: EncodeOptions) -> dict[str, JSON]:
    """The generateContent body for ``request`` of any origin (the model and the stream are the path's)."""
    if request.n is not None and request.n > 1:
        raise RequestError("n > 1 is not supported by a gemini backend", param="n")
    same = request.origin == NAME
    texts, turns = _system_text(request, same)
    body: dict[str, JSON] = {"contents": encode_contents(turns, same)}
    put(body, "systemInstruction", _encode_system(request, texts, same))
    put(body, "tools", _encode_tools(request, same))
    put(body, "toolConfig", _encode_tool_config(request, same))
    put(body, "generationConfig", _generation_config(request, options, same))
    if same:
        merge_extra(body, {k: v for k, v in request.extra.items() if not k.startswith("$") and k != "toolConfig"})
    else:
        for name in ("user", "metadata", "store", "previous_response_id"):
            if getattr(request, name) is not None:
                drop(NAME, name)
    return body


def content_parts(parts: tuple[Part, ...], same: bool) -> list[JSON]:
    """A response's parts, for a Gemini client."""
    return list(PartEncoder(same=same, toward_client=True).encode_all(parts))
