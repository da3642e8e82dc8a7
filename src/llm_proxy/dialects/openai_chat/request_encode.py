"""Encoding a canonical ``Request`` for a Chat upstream, from any origin.

A chat request comes back as it was decoded. A request of another origin is reshaped for Chat:
Claude-style tool results inside user turns become tool messages, images returned by a tool travel in a
following user message (tool messages only take text), foreign thinking is dropped (Chat upstreams
cannot verify it), and fields Chat has no place for are dropped with a debug log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard

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
from llm_proxy.dialects.base import EncodeOptions, drop
from llm_proxy.dialects.jsonread import put
from llm_proxy.dialects.openai_chat.thinking import needs_thinking_blocks, thinking_block
from llm_proxy.dialects.openai_chat.wire import ABSENT_MARK, NAME, from_chat

_EFFORT_BY_BUDGET: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
"""Anthropic ``budget_tokens`` -> ``reasoning_effort``: <=4096 low, <=16384 medium, above high."""

_HANDLED_EXTRA = ("max_tokens", "max_completion_tokens", "stream_options")


def encode_request(request: Request, options: EncodeOptions) -> JSON:
    same = from_chat(request)
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
        body["stop"] = request.stop[0] if request.stop_string_form and len(request.stop) == 1 else list(request.stop)
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


@dataclass
class _MessageEncoder:
    """Builds Chat ``messages`` from canonical ones, reshaping foreign turns on the way."""

    request: Request
    out: list[JSON] = field(default_factory=list)
    pending_images: list[JSON] = field(default_factory=list)
    """Images returned by tools, waiting for the user message that follows the tool messages."""

    @property
    def same(self) -> bool:
        return from_chat(self.request)

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
        put(msg, "name", message.name)
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
        put(inner, "detail", part.detail)
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
        put(msg, "name", name)
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
        msg: dict[str, JSON] = {k: v for k, v in message.extra.items() if k != ABSENT_MARK} if same else {}
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
            msg["tool_calls"] = [encode_tool_call(c, same) for c in calls]
        thinking = [p for p in message.content if isinstance(p, Thinking | RedactedThinking | Reasoning)]
        if thinking and same and needs_thinking_blocks(thinking, message.extra):
            msg["thinking_blocks"] = [thinking_block(p) for p in thinking]
        elif thinking and not same:
            drop(NAME, "thinking of another vendor")
        put(msg, "name", message.name)
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
        if not parts and message.extra.get(ABSENT_MARK):
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


def encode_tool_call(call: ToolCall, same: bool) -> JSON:
    encoded: dict[str, JSON] = dict(call.extra) if same else {}
    encoded["id"] = call.id
    if call.kind == "custom":
        encoded.update(type="custom", custom={"name": call.name, "input": call.arguments})
    else:
        encoded.update(type="function", function={"name": call.name, "arguments": call.arguments})
    return encoded
