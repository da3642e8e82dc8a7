"""Responses input items, both ways: a flat list of items regrouped into canonical turns, and walked back.

Decoding: a run of model-side items (reasoning, function and custom tool calls, hosted-tool items and at
most one assistant message) becomes ONE assistant ``Message``; tool outputs become tool messages; a
reasoning item whose ``encrypted_content`` is a ``claude-thinking`` carry becomes the original Claude
thinking block again. The item readers are shared with the decoding of upstream responses.

Encoding: the parts of each turn become items in order (consecutive content parts share one message item),
so a Responses request re-encodes to an equal ``input``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from llm_proxy.canonical import (
    JSON,
    Image,
    Message,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Text,
    ToolCall,
    ToolResult,
)
from llm_proxy.dialects.base import drop
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.dialects.openai_responses.wire import (
    FAMILY,
    NAME,
    default_text_type,
    is_content_part_type,
    log,
    read,
)
from llm_proxy.framing.carry import decode_carry, is_carry

# ---------------------------------------------------------------------------------------------
# Decoding items into turns (client requests; the item readers serve upstream responses too)
# ---------------------------------------------------------------------------------------------


_ROLES = ("user", "assistant", "system", "developer")


_TOOL_OUTPUTS: dict[str, Literal["function", "custom"]] = {
    "function_call_output": "function",
    "custom_tool_call_output": "custom",
}


_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def decode_input(raw: JSON) -> tuple[tuple[Message, ...], str | None]:
    if raw is None:
        return (), "absent"
    if isinstance(raw, str):
        return (Message(role="user", content=(Text(text=raw),), native={"content": "string"}),), "string"
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
        return Message(role=role, content=(Text(text=content),), native={"content": "string"}, extra=extra)
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
        result = ToolResult(call_id=call_id, content=content, native={"content": "list"}, kind=kind, extra=extra)
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
        provider="openai",
        id=read.opt_string(item.get("id"), f"{param}.id"),
        summary=_texts(item.get("summary", []), f"{param}.summary"),
        content=None if content is None else _texts(content, f"{param}.content"),
        signature=encrypted,
        extra=rest(item, ("type", "id", "summary", "content", "encrypted_content")),
    )


def _restore_thinking(carry: str, param: str) -> Reasoning:
    """The Claude thinking block this proxy hid in a reasoning item's ``encrypted_content``."""
    fields = decode_carry(carry, "claude-thinking")
    if isinstance(fields.get("r"), str):
        return Reasoning(provider="anthropic", redacted=fields["r"])
    thinking, signature = fields.get("t"), fields.get("s")
    if not isinstance(thinking, str) or not (signature is None or isinstance(signature, str)):
        raise Invalid("a reasoning item carried by the proxy is not readable", f"{param}.encrypted_content")
    return Reasoning(provider="anthropic", text=thinking, signature=signature)


# ---------------------------------------------------------------------------------------------
# Encoding turns as items
# ---------------------------------------------------------------------------------------------


class _ItemWriter:
    """Turns canonical turns into input items; consecutive content of one turn becomes one message item."""

    def __init__(self, same: bool) -> None:
        self.same = same
        self.items: list[JSON] = []
        self._extra_used = False

    def message(self, message: Message) -> None:
        self._extra_used = False
        pending: list[Part] = []
        for part in message.content:
            item = self._item_of(part)
            if item is _CONTENT:
                pending.append(part)
                continue
            self._flush(message, pending)
            pending = []
            if item is not None:
                self.items.append(item)
        self._flush(message, pending)
        if not message.content:
            self.items.append(self._message_item(message, "" if message.native.get("content") == "string" else []))

    def _flush(self, message: Message, parts: list[Part]) -> None:
        if not parts:
            return
        content: JSON
        if message.native.get("content") == "string" and len(parts) == 1 and isinstance(parts[0], Text):
            content = parts[0].text
        else:
            content = [c for c in (self._content_part(p, message.role) for p in parts) if c is not None]
            if not content:
                return
        self.items.append(self._message_item(message, content))

    def _message_item(self, message: Message, content: JSON) -> JSON:
        out: dict[str, JSON] = {"role": message.role, "content": content}
        if self.same and not self._extra_used:
            # The item's own fields (type, id, status, phase) go on the first message item of the turn.
            self._extra_used = True
            return merge_extra(out, message.extra)
        return {"type": "message", **out}

    def _item_of(self, part: Part) -> JSON:
        """The item a part becomes on its own, ``_CONTENT`` if it belongs in a message, None if dropped."""
        if isinstance(part, ToolCall):
            return _encode_tool_call(part, self.same)
        if isinstance(part, ToolResult):
            return self._tool_result(part)
        if isinstance(part, Reasoning) and part.provider == "openai":
            return _encode_reasoning_item(part, self.same)
        if isinstance(part, Reasoning):
            # A Responses upstream cannot verify Claude's signatures: the block cannot go there.
            drop(NAME, "claude thinking block")
            return None
        if isinstance(part, Opaque) and NAME in part.dialects and not _is_content_part(part.raw):
            # Opaque content parts stay in the message; the request decoder guarantees this test tells them apart.
            return part.raw
        return _CONTENT

    def _tool_result(self, result: ToolResult) -> JSON:
        kind = "custom_tool_call_output" if result.kind == "custom" else "function_call_output"
        if result.is_error and not self.same:
            drop(NAME, "tool_result.is_error")
        output: JSON
        if result.native.get("content") != "list" and all(isinstance(p, Text) for p in result.content):
            output = "".join(p.text for p in result.content if isinstance(p, Text))
        else:
            output = [c for c in (self._content_part(p, "user") for p in result.content) if c is not None]
        out: dict[str, JSON] = {"type": kind, "call_id": result.call_id, "output": output}
        return merge_extra(out, result.extra) if self.same else out

    def _content_part(self, part: Part, role: str) -> JSON:
        if isinstance(part, Text):
            out: dict[str, JSON] = {"type": default_text_type(role), "text": part.text}
            if self.same:
                return {**out, **part.extra}  # extra may name a non-default part type, holds annotations
            if role == "assistant":
                out["annotations"] = []
            return out
        if isinstance(part, Refusal):
            refusal: dict[str, JSON] = {"type": "refusal", "refusal": part.text}
            return merge_extra(refusal, part.extra) if self.same else refusal
        if isinstance(part, Image):
            return self._image(part, role)
        if isinstance(part, Opaque) and NAME in part.dialects:
            return part.raw
        drop(NAME, f"{type(part).__name__} content in a {role} message")
        return None

    def _image(self, image: Image, role: str) -> JSON:
        if role == "assistant" and not self.same:
            drop(NAME, "image in an assistant message")
            return None
        url = image.url if image.data is None else f"data:{image.media_type or 'image/png'};base64,{image.data}"
        out: dict[str, JSON] = {"type": "input_image", "image_url": url}
        if image.detail is not None or not self.same:
            out["detail"] = image.detail or "auto"
        return merge_extra(out, image.extra) if self.same else out


_CONTENT: JSON = object()
"""Sentinel of ``_ItemWriter._item_of``: the part goes inside a message item."""


def _is_content_part(raw: JSON) -> bool:
    """Content parts vs items, for opaque values of this family."""
    return isinstance(raw, dict) and is_content_part_type(raw.get("type"))


def encode_messages(messages: Iterable[Message], same: bool) -> list[JSON]:
    writer = _ItemWriter(same)
    for message in messages:
        writer.message(message)
    return writer.items


def _encode_tool_call(call: ToolCall, same: bool) -> dict[str, JSON]:
    out: dict[str, JSON]
    if call.kind == "custom":
        out = {"type": "custom_tool_call", "call_id": call.id, "name": call.name, "input": call.arguments}
    else:
        out = {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
    if call.item_id is not None:
        out["id"] = call.item_id
    return merge_extra(out, call.extra) if same else out


def _encode_reasoning_item(part: Reasoning, same: bool) -> JSON:
    if part.id is None and not same:
        drop(NAME, "reasoning item without id")
        return None
    out: dict[str, JSON] = {"type": "reasoning"}
    if part.id is not None:
        out["id"] = part.id
    out["summary"] = [{"type": "summary_text", "text": s} for s in part.summary]
    if part.content is not None:
        out["content"] = [{"type": "reasoning_text", "text": c} for c in part.content]
    if part.signature is not None:
        out["encrypted_content"] = part.signature
    return merge_extra(out, part.extra) if same else out
