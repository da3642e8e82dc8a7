"""Chat messages, both ways: ``messages`` entries and their content parts, tool calls and tool results.

Decoding keeps every wire field without a canonical home in ``extra`` (so do fields sent as null) and
remembers the wire choices with no canonical flag (string content, absent assistant ``content``), so that a
Chat message re-encodes to an equal one. Encoding reshapes turns of other origins for Chat: Claude-style
tool results inside user turns become tool messages, images returned by a tool travel in a following user
message (tool messages only take text), foreign thinking is dropped (Chat upstreams cannot verify it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, TypeGuard

from llm_proxy.canonical import (
    JSON,
    Extra,
    Image,
    Message,
    Native,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Request,
    Text,
    ToolCall,
    ToolResult,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.jsonread import put, rest
from llm_proxy.dialects.openai_chat.thinking import decode_thinking_block, needs_thinking_blocks, thinking_block
from llm_proxy.dialects.openai_chat.wire import FAMILY, NAME, from_chat, read

# ---------------------------------------------------------------------------------------------
# Decoding messages (client requests; the parts are shared with upstream responses)
# ---------------------------------------------------------------------------------------------


_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def decode_message(raw: JSON, param: str) -> Message:
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
        native={"content": "string"} if string_form else {},
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
        # display text with no signature: read like unsigned Claude thinking (no vendor can verify it)
        parts.append(Reasoning(provider="anthropic", text=obj["reasoning_content"]))
    # reasoning_content always stays in extra: it is display text, re-sent verbatim to a Chat upstream
    content = obj.get("content")
    native: Native = {}
    if content is None:
        native = {"content": "null" if "content" in obj else "absent"}
    else:
        content_parts, string_form = decode_content(content, f"{param}.content")
        parts += content_parts
        native = {"content": "string"} if string_form else {}
    if isinstance(obj.get("refusal"), str):
        parts.append(Refusal(text=obj["refusal"]))
        consumed.append("refusal")
    calls = obj.get("tool_calls")
    if isinstance(calls, list) and calls:
        parts += [decode_tool_call(c, f"{param}.tool_calls[{i}]") for i, c in enumerate(calls)]
        consumed.append("tool_calls")
    extra = rest(obj, tuple(consumed))
    extra.pop("content", None)  # null content is a native form
    return Message(
        role="assistant",
        content=tuple(parts),
        native=native,
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
    result = ToolResult(
        call_id=call_id, content=_result_parts(parts), native={} if string_form else {"content": "list"}
    )
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


# ---------------------------------------------------------------------------------------------
# Encoding messages, from any origin
# ---------------------------------------------------------------------------------------------


@dataclass
class MessageEncoder:
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
        if self.request.native.get("system") != "list" and len(system) == 1:
            return {"role": "system", "content": system[0].text}
        return {"role": "system", "content": [{"type": "text", "text": t.text} for t in system]}

    def _plain(self, message: Message, parts: tuple[Part, ...], prefix: list[JSON] | None = None) -> None:
        encoded = (prefix or []) + [p for p in (self._user_part(part, message.role) for part in parts) if p is not None]
        msg: dict[str, JSON] = dict(message.extra) if self.same else {}
        msg["role"] = message.role
        if message.native.get("content") == "string" and not prefix and all(isinstance(p, Text) for p in parts):
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
            self._plain(Message(role="user", content=tuple(rest)), tuple(rest), prefix)

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
        msg: dict[str, JSON] = dict(message.extra) if same else {}
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
        thinking = [p for p in message.content if isinstance(p, Reasoning)]
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
        form = message.native.get("content")
        if form == "string":
            return "".join(t.text for t in texts)
        if form == "null":
            return None
        parts = [self._text_part(p) if isinstance(p, Text) else p.raw for p in message.content if _is_content(p)]
        if not parts and form == "absent":
            return _OMIT
        return parts


_OMIT: JSON = object()
"""Sentinel: leave the ``content`` key out (the client's assistant message had none)."""


def _is_content(part: Part) -> TypeGuard[Text | Opaque]:
    return isinstance(part, Text) or (isinstance(part, Opaque) and NAME in part.dialects)


def _tool_content(result: ToolResult, parts: list[JSON]) -> JSON:
    """A tool message's content; ``is_error`` has no Chat field, so the text says it."""
    if result.native.get("content") != "list" and all(isinstance(p, Text) for p in result.content):
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
