"""The ``claude`` dialect: Anthropic's Messages API (``POST /v1/messages``).

Anthropic's block model is the richest of the four dialects, so this codec is mostly a one-to-one
mapping onto the canonical types: text, image, tool_use, tool_result, thinking (with signature) and
redacted_thinking blocks have canonical parts; every other block (documents, server-tool blocks,
search results) travels as ``Opaque`` for the claude/bedrock family, and every wire field without a
canonical field is kept in ``extra`` so that a Claude request decodes and re-encodes to an equal body.

Toward a Claude upstream the encoder also accepts requests of *other* origins and reshapes them into
what the Messages API accepts: system and developer messages are hoisted into ``system``, OpenAI
``tool`` messages become ``tool_result`` blocks at the head of one user turn, data-URL images become
base64 sources, reasoning effort becomes a thinking budget, and fields Claude would reject are dropped
(with a debug log). The mapping tables are in ``docs/dialects/claude.md``.

The Messages body is shared with Bedrock, whose envelope differs only in ``model``/``stream`` and
auth: ``encode_body``/``decode_body``, ``encode_message``/``decode_message`` and the stream classes'
``feed_event``/``encode_objects`` are the reusable pieces.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
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
    Role,
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
from llm_proxy.carry import decode_carry, encode_carry, is_carry
from llm_proxy.dialects.base import EncodeOptions, ErrorBody, drop, log
from llm_proxy.errors import RequestError, UpstreamError, kind_for_status
from llm_proxy.sse import SSEParser, encode_event

NAME = "claude"
FAMILY = frozenset({"claude", "bedrock"})
"""Dialects that read Claude-style fields, blocks and hosted tools (Bedrock speaks the same body)."""

ANTHROPIC_VERSION = "2023-06-01"
BEDROCK_ENVELOPE = ("anthropic_version", "anthropic_beta")
"""Bedrock's body fields around the Messages body: the bedrock codec re-sends them; Anthropic rejects them."""
MIN_THINKING_BUDGET = 1024
"""Anthropic rejects ``budget_tokens`` below this."""

EFFORT_BUDGETS: dict[str, int | None] = {
    "none": None,
    "minimal": 1024,
    "low": 2048,
    "medium": 4096,
    "high": 8192,
    "xhigh": 16384,
    "max": 32768,
}
"""OpenAI reasoning effort -> Claude thinking ``budget_tokens`` (``None``: no thinking)."""

CUSTOM_TOOL_SCHEMA: dict[str, JSON] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}
"""Input schema standing in for a Responses freeform (``custom``) tool, whose input is raw text."""

DEFAULT_INPUT_SCHEMA: dict[str, JSON] = {"type": "object", "properties": {}}

_TOOL_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SYNTHETIC_ID = "msg_synthesized"


# ---------------------------------------------------------------------------------------------
# Validation helpers: a malformed body raises _Invalid(message, path), which the public entry points
# turn into a RequestError (client bodies) or an UpstreamError (upstream bodies).
# ---------------------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _obj(value: JSON, path: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be an object", path)
    return value


def _list(value: JSON, path: str) -> list[JSON]:
    if not isinstance(value, list):
        raise _Invalid(f"{path} must be a list", path)
    return value


def _str(value: JSON, path: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{path} must be a string", path)
    return value


def _opt_str(value: JSON, path: str) -> str | None:
    return None if value is None else _str(value, path)


def _opt_bool(value: JSON, path: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid(f"{path} must be a boolean", path)
    return value


def _opt_int(value: JSON, path: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Invalid(f"{path} must be an integer", path)
    return value


def _opt_num(value: JSON, path: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _Invalid(f"{path} must be a number", path)
    return value


def _name(value: JSON) -> str:
    """A wire discriminator (``type``, ``role``) usable as a lookup key; "" when it is not a string."""
    return value if isinstance(value, str) else ""


def _index(value: JSON) -> int:
    """A stream block index usable as a lookup key; -1 (never a real index) when it is not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _count(value: JSON) -> int:
    """A token count from an upstream; anything but an integer counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rest(obj: Mapping[str, JSON], known: Iterable[str]) -> Extra:
    """The fields of ``obj`` without a canonical home. A known field set to null is kept too,
    because the decoders read null as absent and the encoder would otherwise not write it back."""
    known = frozenset(known)
    return {k: v for k, v in obj.items() if k not in known or v is None}


def _dumps(value: JSON, path: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise _Invalid(f"{path} cannot be represented as JSON: {exc}", path) from None


def _merge_into(target: dict[str, JSON], extra: Mapping[str, JSON]) -> None:
    """Add ``extra`` fields to an encoded object; canonical values win, nested objects merge."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            target[key] = dict(target[key])  # never mutate a dict shared with the canonical request
            _merge_into(target[key], value)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def tool_id(value: str) -> str:
    """A tool id Claude accepts (``^[a-zA-Z0-9_-]+$``); used for tool_use and tool_result alike."""
    return _TOOL_ID_UNSAFE.sub("_", value)


def message_id(value: str) -> str:
    """A ``msg_``-prefixed id: kept when it already is one, else derived from it (or random if empty)."""
    if value.startswith("msg_"):
        return value
    if not value:
        return "msg_" + uuid.uuid4().hex[:24]
    return "msg_" + _TOOL_ID_UNSAFE.sub("_", value)


# ---------------------------------------------------------------------------------------------
# Decoding content blocks (requests and responses share them)
# ---------------------------------------------------------------------------------------------


def _decode_text(block: dict[str, JSON], path: str) -> Part:
    return Text(
        text=_str(block.get("text"), f"{path}.text"),
        cache_control=block.get("cache_control"),
        extra=_rest(block, ("type", "text", "cache_control")),
    )


def _decode_image(block: dict[str, JSON], path: str) -> Part:
    source = block.get("source")
    extra = _rest(block, ("type", "source", "cache_control"))
    cache = block.get("cache_control")
    if isinstance(source, dict):
        kind, keys = source.get("type"), set(source)
        if kind == "base64" and keys == {"type", "media_type", "data"}:
            media = _str(source["media_type"], f"{path}.source.media_type")
            data = _str(source["data"], f"{path}.source.data")
            return Image(media_type=media, data=data, cache_control=cache, extra=extra)
        if kind == "url" and keys == {"type", "url"}:
            return Image(url=_str(source["url"], f"{path}.source.url"), cache_control=cache, extra=extra)
    # file ids and other sources have no canonical form: forward them within the family
    return Opaque(dialects=FAMILY, raw=block)


def _decode_tool_use(block: dict[str, JSON], path: str) -> Part:
    arguments = block.get("input")
    if not isinstance(arguments, dict):
        raise _Invalid(f"{path}.input must be an object", f"{path}.input")
    return ToolCall(
        id=_str(block.get("id"), f"{path}.id"),
        name=_str(block.get("name"), f"{path}.name"),
        arguments=_dumps(arguments, f"{path}.input"),
        cache_control=block.get("cache_control"),
        extra=_rest(block, ("type", "id", "name", "input", "cache_control")),
    )


def _decode_result_item(item: JSON, path: str) -> Text | Image | Opaque:
    part = _decode_block(item, path)
    if isinstance(part, Text | Image | Opaque):
        return part
    return Opaque(dialects=FAMILY, raw=item)


def _decode_tool_result(block: dict[str, JSON], path: str) -> Part:
    content = block.get("content")
    parts: tuple[Text | Image | Opaque, ...]
    if content is None:
        parts, string_form = (), True
    elif isinstance(content, str):
        parts, string_form = (Text(text=content),), True
    else:
        items = _list(content, f"{path}.content")
        parts = tuple(_decode_result_item(item, f"{path}.content[{i}]") for i, item in enumerate(items))
        string_form = False
    return ToolResult(
        call_id=_str(block.get("tool_use_id"), f"{path}.tool_use_id"),
        content=parts,
        is_error=_opt_bool(block.get("is_error"), f"{path}.is_error"),
        string_form=string_form,
        cache_control=block.get("cache_control"),
        extra=_rest(block, ("type", "tool_use_id", "content", "is_error", "cache_control")),
    )


def _decode_thinking(block: dict[str, JSON], path: str) -> Part:
    text = _str(block.get("thinking"), f"{path}.thinking")
    signature = _opt_str(block.get("signature"), f"{path}.signature")
    if signature is not None and is_carry(signature):
        # an OpenAI reasoning item this proxy showed the client as a thinking block: restore it
        fields = decode_carry(signature, "openai-reasoning")
        item_id, enc = fields.get("id"), fields.get("enc")
        return Reasoning(
            id=item_id if isinstance(item_id, str) else None,
            summary=(text,) if text else (),
            encrypted_content=enc if isinstance(enc, str) else None,
        )
    return Thinking(thinking=text, signature=signature, extra=_rest(block, ("type", "thinking", "signature")))


def _decode_redacted(block: dict[str, JSON], path: str) -> Part:
    return RedactedThinking(data=_str(block.get("data"), f"{path}.data"), extra=_rest(block, ("type", "data")))


_BLOCK_DECODERS: dict[str, Callable[[dict[str, JSON], str], Part]] = {
    "text": _decode_text,
    "image": _decode_image,
    "tool_use": _decode_tool_use,
    "tool_result": _decode_tool_result,
    "thinking": _decode_thinking,
    "redacted_thinking": _decode_redacted,
}


def _decode_block(raw: JSON, path: str) -> Part:
    block = _obj(raw, path)
    kind = _str(block.get("type"), f"{path}.type")
    decoder = _BLOCK_DECODERS.get(kind)
    return decoder(block, path) if decoder else Opaque(dialects=FAMILY, raw=block)


def _decode_blocks(raw: JSON, path: str) -> tuple[Part, ...]:
    return tuple(_decode_block(item, f"{path}[{i}]") for i, item in enumerate(_list(raw, path)))


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
    obj = _obj(raw, path)
    role = _ROLES.get(_name(obj.get("role")))
    if role is None:
        raise _Invalid(f"{path}.role must be one of user, assistant, system", f"{path}.role")
    content = obj.get("content")
    extra = _rest(obj, ("role", "content"))
    if isinstance(content, str):
        return Message(role=role, content=(Text(text=content),), string_form=True, extra=extra)
    return Message(role=role, content=_decode_blocks(content, f"{path}.content"), extra=extra)


def _decode_system(raw: JSON) -> tuple[tuple[Text, ...] | None, bool]:
    if raw is None:
        return None, True
    if isinstance(raw, str):
        return (Text(text=raw),), True
    parts = _decode_blocks(raw, "system")
    for i, part in enumerate(parts):
        if not isinstance(part, Text):
            raise _Invalid("system blocks must be text blocks", f"system[{i}]")
    return tuple(p for p in parts if isinstance(p, Text)), False


def _decode_tool(raw: JSON, path: str) -> Tool | HostedTool:
    tool = _obj(raw, path)
    kind = tool.get("type")
    if kind is not None and kind != "custom":
        return HostedTool(dialects=FAMILY, raw=tool)  # versioned server tools (web search, bash, ...)
    return Tool(
        name=_str(tool.get("name"), f"{path}.name"),
        description=_opt_str(tool.get("description"), f"{path}.description"),
        parameters=tool.get("input_schema"),
        strict=_opt_bool(tool.get("strict"), f"{path}.strict"),
        cache_control=tool.get("cache_control"),
        extra=_rest(tool, ("name", "description", "input_schema", "strict", "cache_control")),
    )


def _decode_tools(raw: JSON) -> tuple[Tool | HostedTool, ...] | None:
    if raw is None:
        return None
    return tuple(_decode_tool(item, f"tools[{i}]") for i, item in enumerate(_list(raw, "tools")))


def _decode_tool_choice(raw: JSON, extra: Extra) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    obj = _obj(raw, "tool_choice")
    mode = _CHOICE_MODES.get(_name(obj.get("type")))
    if mode is None:
        raise _Invalid("tool_choice.type must be one of auto, any, none, tool", "tool_choice.type")
    name = _str(obj.get("name"), "tool_choice.name") if mode == "tool" else None
    disable = _opt_bool(obj.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    rest = _rest(obj, ("type", "name", "disable_parallel_tool_use"))
    if rest:
        extra["tool_choice"] = rest
    return ToolChoice(mode=mode, name=name), None if disable is None else not disable  # type: ignore[arg-type]


def _decode_thinking_config(raw: JSON, extra: Extra) -> tuple[str | None, int | None]:
    if raw is None:
        return None, None
    obj = _obj(raw, "thinking")
    mode = _name(obj.get("type"))
    if mode not in _THINKING_MODES:
        raise _Invalid("thinking.type must be one of enabled, adaptive, disabled", "thinking.type")
    rest = _rest(obj, ("type", "budget_tokens"))
    if rest:
        extra["thinking"] = rest
    return mode, _opt_int(obj.get("budget_tokens"), "thinking.budget_tokens")


def _decode_output_config(raw: JSON, extra: Extra) -> tuple[str | None, ResponseFormat | None]:
    if raw is None:
        return None, None
    obj = _obj(raw, "output_config")
    effort = _opt_str(obj.get("effort"), "output_config.effort")
    rest = _rest(obj, ("effort", "format"))
    fmt = obj.get("format")
    response_format = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        response_format = ResponseFormat(type="json_schema", schema=fmt.get("schema"))
        if len(fmt) > 2 or "schema" not in fmt:
            rest["format"] = _rest(fmt, ("type", "schema"))
    elif fmt is not None:
        rest["format"] = fmt  # a format type with no canonical form: kept verbatim
    if rest or not obj:
        extra["output_config"] = rest
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
    metadata = dict(_obj(raw, "metadata"))
    user = metadata.get("user_id")
    if not isinstance(user, str):
        return None, metadata
    del metadata["user_id"]
    return user, metadata or None


def _decode_stop(raw: JSON) -> tuple[str, ...] | None:
    if raw is None:
        return None
    return tuple(_str(s, f"stop_sequences[{i}]") for i, s in enumerate(_list(raw, "stop_sequences")))


def _decode_body(body: JSON, model: str, origin: str) -> Request:
    obj = _obj(body, "body")
    if "messages" not in obj:
        raise _Invalid("messages is required", "messages")
    extra = {k: v for k, v in _rest(obj, _TOP_LEVEL).items() if k not in ("model", "stream")}
    messages = _list(obj["messages"], "messages")
    system, system_string_form = _decode_system(obj.get("system"))
    tool_choice, parallel = _decode_tool_choice(obj.get("tool_choice"), extra)
    reasoning, response_format = _decode_reasoning(obj, extra)
    user, metadata = _decode_metadata(obj.get("metadata"))
    return Request(
        model=model,
        messages=tuple(_decode_message(m, f"messages[{i}]") for i, m in enumerate(messages)),
        system=system,
        system_string_form=system_string_form,
        tools=_decode_tools(obj.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=_opt_int(obj.get("max_tokens"), "max_tokens"),
        temperature=_opt_num(obj.get("temperature"), "temperature"),
        top_p=_opt_num(obj.get("top_p"), "top_p"),
        top_k=_opt_int(obj.get("top_k"), "top_k"),
        stop=_decode_stop(obj.get("stop_sequences")),
        reasoning=reasoning,
        response_format=response_format,
        user=user,
        metadata=metadata,
        extra=extra,
        origin=origin,
    )


def decode_body(body: JSON, *, model: str, origin: str) -> Request:
    """A Messages body (``model`` and ``stream`` are the caller's business) as a canonical request.

    Raises ``RequestError`` naming the offending field when the body is malformed.
    """
    try:
        return _decode_body(body, model, origin)
    except _Invalid as exc:
        raise RequestError(exc.message, param=exc.path) from None


# ---------------------------------------------------------------------------------------------
# Encoding content parts
# ---------------------------------------------------------------------------------------------

_IMAGE_MAGIC = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def _sniff_media_type(data: str) -> str:
    """Claude requires a media type; guess it from the base64 magic bytes when the client gave none."""
    return next((media for prefix, media in _IMAGE_MAGIC if data.startswith(prefix)), "image/png")


def _image_source(image: Image) -> dict[str, JSON] | None:
    if image.data is not None:
        return {"type": "base64", "media_type": image.media_type or _sniff_media_type(image.data), "data": image.data}
    url = image.url or ""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media, *params = header.split(";")
        if "base64" not in params:
            return None
        return {"type": "base64", "media_type": media or _sniff_media_type(data), "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    return None


def _finish_block(block: dict[str, JSON], cache_control: JSON, extra: Extra, same: bool) -> dict[str, JSON]:
    if cache_control is not None:
        block["cache_control"] = cache_control
    if same:
        _merge_into(block, extra)
    return block


def _encode_text(part: Text, same: bool) -> dict[str, JSON] | None:
    if not part.text:
        log.debug("dropped an empty text block toward %s", NAME)  # Claude rejects empty text blocks
        return None
    return _finish_block({"type": "text", "text": part.text}, part.cache_control, part.extra, same)


def _encode_image(part: Image, same: bool) -> dict[str, JSON] | None:
    source = _image_source(part)
    if source is None:
        drop(NAME, "image whose URL is neither http(s) nor a base64 data URL")
        return None
    return _finish_block({"type": "image", "source": source}, part.cache_control, part.extra, same)


def tool_input(call: ToolCall) -> dict[str, JSON]:
    """``ToolCall.arguments`` (JSON text) as the object Claude wants; nothing is lost on bad JSON."""
    if call.kind == "custom":
        return {"input": call.arguments}
    if not call.arguments.strip():
        return {}  # OpenAI models emit "" for a call without arguments
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    log.debug("tool call %s: arguments are not a JSON object, sent as _raw_arguments", call.id)
    return {"_raw_arguments": call.arguments}


def _encode_tool_call(part: ToolCall, same: bool) -> dict[str, JSON]:
    block: dict[str, JSON] = {"type": "tool_use", "id": tool_id(part.id), "name": part.name, "input": tool_input(part)}
    return _finish_block(block, part.cache_control, part.extra, same)


def _tool_result_content(part: ToolResult, same: bool) -> JSON:
    if part.string_form and all(isinstance(p, Text) for p in part.content):
        return "".join(p.text for p in part.content if isinstance(p, Text)) if part.content else None
    blocks = [_encode_part(p, same, toward_client=False) for p in part.content]
    return [b for b in blocks if b is not None]


def _encode_tool_result(part: ToolResult, same: bool) -> dict[str, JSON]:
    block: dict[str, JSON] = {"type": "tool_result", "tool_use_id": tool_id(part.call_id)}
    content = _tool_result_content(part, same)
    if content is not None:
        block["content"] = content
    if part.is_error is not None:
        block["is_error"] = part.is_error
    return _finish_block(block, part.cache_control, part.extra, same)


def _encode_thinking(part: Thinking, same: bool, toward_client: bool) -> dict[str, JSON] | None:
    if not part.signature and not toward_client:
        log.debug("dropped a thinking block without signature toward %s", NAME)  # Claude would reject it
        return None
    block: dict[str, JSON] = {"type": "thinking", "thinking": part.thinking, "signature": part.signature or ""}
    return _finish_block(block, None, part.extra, same)


def reasoning_signature(item_id: str | None, encrypted_content: str | None) -> str:
    """The thinking signature that carries an OpenAI reasoning item through a Claude client."""
    return encode_carry("openai-reasoning", {"id": item_id, "enc": encrypted_content})


def _encode_reasoning(part: Reasoning, toward_client: bool) -> dict[str, JSON] | None:
    if toward_client:
        text = "\n\n".join(part.summary)
        return {"type": "thinking", "thinking": text, "signature": reasoning_signature(part.id, part.encrypted_content)}
    # Toward Claude, only a reasoning item that was a Claude block in disguise has meaning.
    if is_carry(part.encrypted_content):
        try:
            fields = decode_carry(part.encrypted_content or "", "claude-thinking")
        except RequestError:
            fields = {}
        if isinstance(fields.get("r"), str):
            return {"type": "redacted_thinking", "data": fields["r"]}
        if isinstance(fields.get("t"), str) and isinstance(fields.get("s"), str):
            return {"type": "thinking", "thinking": fields["t"], "signature": fields["s"]}
    drop(NAME, "reasoning item of another vendor")
    return None


def _encode_opaque(part: Opaque) -> JSON:
    if part.dialects & FAMILY:
        return part.raw
    drop(NAME, "block of another dialect")
    return None


def _encode_part(part: Part, same: bool, *, toward_client: bool) -> dict[str, JSON] | None:
    match part:
        case Text():
            if toward_client:
                return _finish_block({"type": "text", "text": part.text}, part.cache_control, part.extra, same)
            return _encode_text(part, same)
        case Image():
            return _encode_image(part, same)
        case ToolCall():
            return _encode_tool_call(part, same)
        case ToolResult():
            return _encode_tool_result(part, same)
        case Thinking():
            return _encode_thinking(part, same, toward_client)
        case RedactedThinking():
            return _finish_block({"type": "redacted_thinking", "data": part.data}, None, part.extra, same)
        case Reasoning():
            return _encode_reasoning(part, toward_client)
        case Refusal():
            return _encode_text(Text(text=part.text), same=False)  # Claude has no refusal block
        case Opaque():
            raw = _encode_opaque(part)
            return raw if isinstance(raw, dict) else None
    return None


def _encode_parts(parts: Iterable[Part], same: bool) -> list[dict[str, JSON]]:
    blocks = [_encode_part(p, same, toward_client=False) for p in parts]
    return [b for b in blocks if b is not None]


# ---------------------------------------------------------------------------------------------
# Encoding the conversation: system hoisting, tool message merging, tool_result placement
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SystemBuilder:
    """Collects the top-level system prompt from ``Request.system`` and hoisted system messages."""

    same: bool
    parts: list[tuple[Text, bool]] = field(default_factory=list)

    def add(self, parts: Iterable[Part], string_form: bool) -> None:
        for part in parts:
            if isinstance(part, Text):
                self.parts.append((part, string_form))
            else:
                drop(NAME, "non-text content in a system message")

    def build(self) -> JSON:
        kept = [(p, s) for p, s in self.parts if p.text]  # Claude rejects empty system text blocks
        if len(kept) < len(self.parts):
            log.debug("dropped %d empty system text block(s) toward %s", len(self.parts) - len(kept), NAME)
        if not kept:
            return None
        (first, string_form), *others = kept
        if not others and string_form and first.cache_control is None and not (self.same and first.extra):
            return first.text
        return [_encode_text(p, self.same) for p, _ in kept]


def _plain_text(block: dict[str, JSON]) -> bool:
    return set(block) == {"type", "text"} and block["type"] == "text"


def _results_first(blocks: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
    """Claude requires a user turn's tool_result blocks to come before anything else in it."""
    results = [b for b in blocks if b.get("type") == "tool_result"]
    return results + [b for b in blocks if b.get("type") != "tool_result"]


def _encode_message(message: Message, same: bool) -> dict[str, JSON] | None:
    role = "system" if message.role in ("system", "developer") else message.role
    blocks = _encode_parts(message.content, same)
    if not blocks:
        log.debug("dropped a %s message with no content left toward %s", role, NAME)
        return None
    if role == "user":
        blocks = _results_first(blocks)
    content: JSON = blocks
    if message.string_form and len(blocks) == 1 and _plain_text(blocks[0]):
        content = blocks[0]["text"]
    turn: dict[str, JSON] = {"role": role, "content": content}
    if same:
        _merge_into(turn, message.extra)
    elif message.name is not None:
        drop(NAME, "message name")
    return turn


def _encode_conversation(request: Request, same: bool) -> tuple[JSON, list[dict[str, JSON]]]:
    system = _SystemBuilder(same)
    system.add(request.system or (), request.system_string_form)
    turns: list[dict[str, JSON]] = []
    results: list[dict[str, JSON]] | None = None  # content of a user turn made from "tool" messages, still open
    for message in request.messages:
        if message.role in ("system", "developer") and not same:
            system.add(message.content, message.string_form)  # Claude has no system turns elsewhere
            continue
        if message.role == "tool":
            blocks = _encode_parts(message.content, same)
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.extend(blocks)
            continue
        if message.role == "user" and results is not None:
            # the user message right after tool results joins their turn, after them
            results.extend(_encode_parts(message.content, same))
            results[:] = _results_first(results)
            results = None
            continue
        results = None
        turn = _encode_message(message, same)
        if turn is not None:
            turns.append(turn)
    return system.build(), [t for t in turns if t["content"]]


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
    return _finish_block(out, tool.cache_control, tool.extra, same)


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
    system, messages = _encode_conversation(request, same)
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
        _merge_into(body, {k: v for k, v in request.extra.items() if k not in envelope})
    else:
        _drop_foreign_fields(request)
    return body


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

_STOP_REASONS = {s.value: s for s in StopReason if s is not StopReason.CONTENT_FILTER}
_USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("output_tokens", "output_tokens"),
)


def _stop_reason(value: JSON) -> StopReason | None:
    if value is None:
        return None
    return _STOP_REASONS.get(value, StopReason.END_TURN) if isinstance(value, str) else None


def stop_reason_json(reason: StopReason | None) -> str | None:
    if reason is None:
        return None
    return "refusal" if reason is StopReason.CONTENT_FILTER else reason.value


def usage_json(usage: Usage) -> dict[str, JSON]:
    return {wire: getattr(usage, attr) for wire, attr in _USAGE_FIELDS}


def _merge_usage(usage: Usage, raw: JSON) -> Usage:
    """``usage`` with every count that ``raw`` (a wire usage object) carries replaced by its value."""
    if not isinstance(raw, dict):
        return usage
    counts = {attr: _count(raw[wire]) for wire, attr in _USAGE_FIELDS if raw.get(wire) is not None}
    return replace(usage, **counts)


def _custom_tool_names(request: Request) -> frozenset[str]:
    return frozenset(t.name for t in request.tools or () if isinstance(t, Tool) and t.kind == "custom")


def _unwrap_custom(part: Part, custom: frozenset[str]) -> Part:
    """A tool_use of a freeform tool back to its raw text input (see CUSTOM_TOOL_SCHEMA)."""
    if not isinstance(part, ToolCall) or part.name not in custom:
        return part
    return replace(part, kind="custom", arguments=_unwrap_custom_json(part.arguments))


def _decode_message_body(body: JSON, request: Request, origin: str) -> Response:
    obj = _obj(body, "response")
    custom = _custom_tool_names(request)
    blocks = _decode_blocks(obj.get("content", []), "content")
    extra = _rest(obj, ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"))
    usage = obj.get("usage")
    if isinstance(usage, dict):
        usage_extra = _rest(usage, (wire for wire, _ in _USAGE_FIELDS))
        if usage_extra:
            extra["usage"] = usage_extra
    model = obj.get("model")
    return Response(
        id=_str(obj.get("id", ""), "id"),
        model=model if isinstance(model, str) else request.model,
        content=tuple(_unwrap_custom(p, custom) for p in blocks),
        stop_reason=_stop_reason(obj.get("stop_reason")),
        stop_sequence=_opt_str(obj.get("stop_sequence"), "stop_sequence"),
        usage=_merge_usage(Usage(), usage),
        extra=extra,
        origin=origin,
    )


def decode_message(body: JSON, request: Request, *, origin: str = NAME) -> Response:
    """A Messages response body as a canonical response; a malformed one raises ``UpstreamError`` (502)."""
    try:
        return _decode_message_body(body, request, origin)
    except _Invalid as exc:
        message = f"the upstream sent an invalid Messages response ({exc.message})"
        raise UpstreamError(ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message)) from None


def _response_parts(parts: Iterable[Part]) -> Iterable[Part]:
    for part in parts:
        if isinstance(part, Image | ToolResult):
            drop(NAME, f"{type(part).__name__} in an assistant response")  # Claude responses have no such block
        else:
            yield part


def encode_message(response: Response, request: Request) -> dict[str, JSON]:
    """A canonical response as a Messages response object shown under the client's model name."""
    same = response.origin in FAMILY
    content = [_encode_part(p, same, toward_client=True) for p in _response_parts(response.content)]
    out: dict[str, JSON] = {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [b for b in content if b is not None],
        "stop_reason": stop_reason_json(response.stop_reason),
        "stop_sequence": response.stop_sequence,
        "usage": usage_json(response.usage),
    }
    if same:
        _merge_into(out, response.extra)
    return out


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

ERROR_TYPES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.BILLING: "billing_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.CONFLICT: "conflict_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.CONTEXT_LENGTH: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.UPSTREAM_UNREACHABLE: "api_error",
}
"""Canonical error kind -> Anthropic error ``type``."""

ERROR_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.BILLING,
    "not_found_error": ErrorKind.NOT_FOUND,
    "conflict_error": ErrorKind.CONFLICT,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "api_error": ErrorKind.API_ERROR,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout_error": ErrorKind.TIMEOUT,
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH,
}
"""Anthropic error ``type`` -> canonical kind."""

_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_CLIENT_STATUS = {ErrorKind.OVERLOADED: 529, ErrorKind.UPSTREAM_UNREACHABLE: 502, ErrorKind.TIMEOUT: 504}
_CONTEXT_MARKERS = ("prompt is too long", "context_length_exceeded", "exceed context limit")


def error_json(error: ProxyError) -> dict[str, JSON]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(error.kind, "api_error"), "message": error.message}}


def _error_kind(error_type: str | None, message: str, status: int) -> ErrorKind:
    lowered = message.lower()
    if any(marker in lowered for marker in _CONTEXT_MARKERS) or error_type == "context_length_exceeded":
        return ErrorKind.CONTEXT_LENGTH
    if error_type in ERROR_KINDS:
        return ERROR_KINDS[error_type]
    return kind_for_status(status)


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """(type, message) of an error body; a body that is not a JSON error object becomes the message."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        inner = obj.get("error")
        source = inner if isinstance(inner, dict) else obj
        error_type, message = source.get("type"), source.get("message")
        if isinstance(message, str):
            return (error_type if isinstance(error_type, str) else None), message
    return None, body.decode("utf-8", "replace")[:500]


def decode_error_event(obj: Mapping[str, JSON]) -> ProxyError:
    """An ``error`` stream event (``{"type":"error","error":{type, message}}``) as a canonical error."""
    inner = obj.get("error")
    fields: Mapping[str, Any] = inner if isinstance(inner, dict) else {}
    error_type, text = fields.get("type"), fields.get("message")
    error_type = error_type if isinstance(error_type, str) else None
    message = text if isinstance(text, str) else "the upstream stream failed"
    status = _STATUS_BY_TYPE.get(error_type or "", 500)
    return ProxyError(status=status, kind=_error_kind(error_type, message, status), message=message)


# ---------------------------------------------------------------------------------------------
# Stream decoding: Anthropic SSE (or already-parsed event objects) -> canonical events
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _UpstreamBlock:
    index: int
    """The canonical index (consecutive, whatever the upstream numbered)."""
    buffered: bool = False
    """Input deltas are held until the block stops (freeform tools and opaque blocks)."""
    parts: list[str] = field(default_factory=list)
    raw: dict[str, JSON] | None = None
    """The opaque block, emitted whole at its stop."""


def _cut_error() -> StreamError:
    message = "upstream closed the stream before it finished"
    return StreamError(error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message))


class ClaudeStreamDecoder:
    """Anthropic stream events -> canonical events. ``feed`` takes SSE bytes, ``feed_event`` parsed objects."""

    def __init__(self, request: Request) -> None:
        self._parser = SSEParser()
        self._model = request.model
        self._custom = _custom_tool_names(request)
        self._started = False
        self._done = False
        self._next_index = 0
        self._blocks: dict[int, _UpstreamBlock] = {}
        self._usage = Usage()
        self._stop_reason: StopReason | None = None
        self._stop_sequence: str | None = None

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._parser.feed(data):
            try:
                obj = orjson.loads(sse.data)
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                out.extend(self._fail("the upstream sent a stream event that is not a JSON object"))
            elif sse.event == "error" and obj.get("type") != "error":
                out.extend(self.feed_event({"type": "error", "error": obj.get("error", obj)}))
            else:
                out.extend(self.feed_event(obj))
        return out

    def close(self) -> list[StreamEvent]:
        self._parser.close()
        if self._done:
            return []
        self._done = True
        return [_cut_error()]

    def feed_event(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        """One Messages stream event object. Pings and unknown event types produce nothing."""
        handler = self._HANDLERS.get(_name(obj.get("type")))
        if self._done or handler is None:
            return []
        try:
            return handler(self, obj)
        except _Invalid as exc:
            return self._fail(f"the upstream sent an invalid stream event ({exc.message})")

    # -- helpers ------------------------------------------------------------------------------

    def _fail(self, message: str) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [StreamError(error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message))]

    def _start(self) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [MessageStart(id=_SYNTHETIC_ID, model=self._model)]

    def _stop_block(self, block: _UpstreamBlock) -> list[StreamEvent]:
        joined = "".join(block.parts)
        if block.raw is not None:
            raw = dict(block.raw)
            if joined:
                try:
                    raw["input"] = orjson.loads(joined)
                except orjson.JSONDecodeError:
                    raw["input"] = {"_raw_arguments": joined}
            return [BlockStart(index=block.index, kind="opaque", raw=raw), BlockStop(index=block.index)]
        if block.buffered:
            text = _unwrap_custom_json(joined)
            return [ToolArgsDelta(index=block.index, partial_json=text), BlockStop(index=block.index)]
        return [BlockStop(index=block.index)]

    # -- handlers -----------------------------------------------------------------------------

    def _on_message_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        message = _obj(obj.get("message"), "message")
        self._usage = _merge_usage(Usage(), message.get("usage"))
        msg_id, model = message.get("id"), message.get("model")
        return [
            MessageStart(
                id=msg_id if isinstance(msg_id, str) else _SYNTHETIC_ID,
                model=model if isinstance(model, str) else self._model,
                usage=self._usage,
            )
        ]

    def _on_block_start(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        upstream = _opt_int(obj.get("index"), "index")
        block = _obj(obj.get("content_block"), "content_block")
        if upstream is None or upstream in self._blocks:
            raise _Invalid("content_block_start needs a new index", "index")
        state = _UpstreamBlock(index=self._next_index)
        self._next_index += 1
        self._blocks[upstream] = state
        out.extend(self._open_block(state, block))
        return out

    def _open_block(self, state: _UpstreamBlock, block: dict[str, JSON]) -> list[StreamEvent]:
        kind, index = block.get("type"), state.index
        if kind == "text":
            text = _str(block.get("text", ""), "content_block.text")
            started: list[StreamEvent] = [BlockStart(index=index, kind="text")]
            return started + ([TextDelta(index=index, text=text)] if text else [])
        if kind == "tool_use":
            return self._open_tool_use(state, block)
        if kind == "thinking":
            text = _str(block.get("thinking", ""), "content_block.thinking")
            signature = _str(block.get("signature", ""), "content_block.signature")
            out: list[StreamEvent] = [BlockStart(index=index, kind="thinking")]
            out += [ThinkingDelta(index=index, text=text)] if text else []
            return out + ([SignatureDelta(index=index, signature=signature)] if signature else [])
        if kind == "redacted_thinking":
            data = _str(block.get("data"), "content_block.data")
            return [BlockStart(index=index, kind="redacted_thinking", data=data)]
        state.raw, state.buffered = block, True  # server-tool and other blocks: emitted whole at their stop
        return []

    def _open_tool_use(self, state: _UpstreamBlock, block: dict[str, JSON]) -> list[StreamEvent]:
        name = _str(block.get("name"), "content_block.name")
        custom = name in self._custom
        state.buffered = custom
        start = BlockStart(
            index=state.index,
            kind="tool_call",
            id=_str(block.get("id"), "content_block.id"),
            name=name,
            tool_kind="custom" if custom else "function",
        )
        arguments = block.get("input")
        if isinstance(arguments, dict) and arguments:
            # a tool_use that arrived whole rather than as input_json_delta fragments
            text = _dumps(arguments, "content_block.input")
            if custom:
                state.parts.append(text)
                return [start]
            return [start, ToolArgsDelta(index=state.index, partial_json=text)]
        return [start]

    def _on_block_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        block = self._blocks.get(_index(obj.get("index")))
        delta = obj.get("delta")
        if block is None or not isinstance(delta, dict):
            return []  # a delta for a block that never started: nothing sensible to attach it to
        kind, index = delta.get("type"), block.index
        if kind == "text_delta":
            return [TextDelta(index=index, text=_str(delta.get("text"), "delta.text"))]
        if kind == "input_json_delta":
            fragment = _str(delta.get("partial_json"), "delta.partial_json")
            if block.buffered:
                block.parts.append(fragment)
                return []
            return [ToolArgsDelta(index=index, partial_json=fragment)]
        if kind == "thinking_delta":
            return [ThinkingDelta(index=index, text=_str(delta.get("thinking"), "delta.thinking"))]
        if kind == "signature_delta":
            return [SignatureDelta(index=index, signature=_str(delta.get("signature"), "delta.signature"))]
        return []  # citations_delta and future delta types have no canonical form

    def _on_block_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        block = self._blocks.pop(_index(obj.get("index")), None)
        return [] if block is None else self._stop_block(block)

    def _on_message_delta(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        delta = obj.get("delta")
        if isinstance(delta, dict):
            if "stop_reason" in delta:
                self._stop_reason = _stop_reason(delta["stop_reason"])
            if "stop_sequence" in delta:
                self._stop_sequence = _opt_str(delta["stop_sequence"], "delta.stop_sequence")
        self._usage = _merge_usage(self._usage, obj.get("usage"))  # cumulative: the latest values win
        return self._start()

    def _on_message_stop(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        out = self._start()
        for upstream in sorted(self._blocks, key=lambda k: self._blocks[k].index):
            out.extend(self._stop_block(self._blocks.pop(upstream)))
        out.append(Finish(stop_reason=self._stop_reason, stop_sequence=self._stop_sequence, usage=self._usage))
        self._done = True
        return out

    def _on_error(self, obj: dict[str, JSON]) -> list[StreamEvent]:
        self._done = True
        return [StreamError(error=decode_error_event(obj))]

    _HANDLERS: dict[str, Callable[[ClaudeStreamDecoder, dict[str, JSON]], list[StreamEvent]]] = {
        "message_start": _on_message_start,
        "content_block_start": _on_block_start,
        "content_block_delta": _on_block_delta,
        "content_block_stop": _on_block_stop,
        "message_delta": _on_message_delta,
        "message_stop": _on_message_stop,
        "error": _on_error,
    }


def _unwrap_custom_json(text: str) -> str:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return text
    inner = value.get("input") if isinstance(value, dict) else None
    return inner if isinstance(inner, str) else text


# ---------------------------------------------------------------------------------------------
# Stream encoding: canonical events -> Anthropic event objects -> SSE
# ---------------------------------------------------------------------------------------------

_OPAQUE_SUFFIXES = ("_tool_use", "_tool_result")
_DELTA_KINDS: dict[type, tuple[str, ...]] = {
    TextDelta: ("text", "refusal"),
    ToolArgsDelta: ("tool_call",),
    ThinkingDelta: ("thinking", "reasoning"),
    SignatureDelta: ("thinking", "reasoning"),
}


@dataclass(slots=True)
class _ClientBlock:
    index: int
    """The index shown to the client."""
    kind: str
    custom: bool = False
    item_id: str | None = None
    signature: list[str] = field(default_factory=list)


def _start_block_json(event: BlockStart) -> dict[str, JSON] | None:
    if event.kind in ("text", "refusal"):
        return {"type": "text", "text": ""}
    if event.kind == "tool_call":
        return {"type": "tool_use", "id": tool_id(event.id or ""), "name": event.name or "", "input": {}}
    if event.kind in ("thinking", "reasoning"):
        return {"type": "thinking", "thinking": "", "signature": ""}
    if event.kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": event.data or ""}
    raw = event.raw
    # only Claude's own server-tool blocks mean anything to a Claude client
    if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"].endswith(_OPAQUE_SUFFIXES):
        return raw
    drop(NAME, f"stream block {event.kind}")
    return None


def _delta(index: int, delta: dict[str, JSON]) -> dict[str, JSON]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


class ClaudeStreamEncoder:
    """Canonical events -> Anthropic stream events, as objects (``encode_objects``) or SSE (``encode``)."""

    content_type = "text/event-stream"

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: dict[int, _ClientBlock] = {}
        self._start_usage = Usage()

    def encode(self, event: StreamEvent) -> bytes:
        return b"".join(encode_event(orjson.dumps(obj), obj["type"]) for obj in self.encode_objects(event))

    def close(self) -> bytes:
        return b""  # Anthropic streams end with message_stop, which Finish already produced

    def encode_objects(self, event: StreamEvent) -> list[dict[str, JSON]]:
        if self._done:
            return []
        if isinstance(event, StreamError):
            self._done = True
            return [error_json(event.error)]
        out: list[dict[str, JSON]] = []
        if not self._started:
            out.append(self._message_start(event if isinstance(event, MessageStart) else None))
        if isinstance(event, BlockStart):
            out.extend(self._block_start(event))
        elif isinstance(event, BlockStop):
            out.extend(self._block_stop(event.index))
        elif isinstance(event, Finish):
            out.extend(self._finish(event))
        elif not isinstance(event, MessageStart):
            out.extend(self._block_delta(event))
        return out

    def _message_start(self, event: MessageStart | None) -> dict[str, JSON]:
        self._started = True
        self._start_usage = event.usage if event is not None else Usage()
        message: dict[str, JSON] = {
            "id": message_id(event.id if event is not None else ""),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(self._start_usage),
        }
        return {"type": "message_start", "message": message}

    def _block_start(self, event: BlockStart) -> list[dict[str, JSON]]:
        block_json = _start_block_json(event)
        if block_json is None or event.index in self._open:
            return []
        custom = event.kind == "tool_call" and event.tool_kind == "custom"
        block = _ClientBlock(index=self._next_index, kind=event.kind, custom=custom, item_id=event.id)
        self._next_index += 1
        self._open[event.index] = block
        out = [{"type": "content_block_start", "index": block.index, "content_block": block_json}]
        if custom:  # freeform tool input travels as {"input": "<text>"}, streamed as escaped fragments
            out.append(_delta(block.index, {"type": "input_json_delta", "partial_json": '{"input":"'}))
        return out

    def _block_delta(self, event: TextDelta | ToolArgsDelta | ThinkingDelta | SignatureDelta) -> list[dict[str, JSON]]:
        block = self._open.get(event.index)
        if block is None or block.kind not in _DELTA_KINDS[type(event)]:
            return []
        if isinstance(event, TextDelta):
            return [_delta(block.index, {"type": "text_delta", "text": event.text})]
        if isinstance(event, ThinkingDelta):
            return [_delta(block.index, {"type": "thinking_delta", "thinking": event.text})]
        if isinstance(event, SignatureDelta):
            block.signature.append(event.signature)  # sent just before the block stops, as Anthropic does
            return []
        fragment = orjson.dumps(event.partial_json).decode()[1:-1] if block.custom else event.partial_json
        return [_delta(block.index, {"type": "input_json_delta", "partial_json": fragment})]

    def _block_stop(self, index: int) -> list[dict[str, JSON]]:
        block = self._open.pop(index, None)
        if block is None:
            return []
        out: list[dict[str, JSON]] = []
        signature = "".join(block.signature)
        if block.kind == "reasoning":
            signature = reasoning_signature(block.item_id, signature or None)
        if signature:
            out.append(_delta(block.index, {"type": "signature_delta", "signature": signature}))
        if block.custom:
            out.append(_delta(block.index, {"type": "input_json_delta", "partial_json": '"}'}))
        out.append({"type": "content_block_stop", "index": block.index})
        return out

    def _finish(self, event: Finish) -> list[dict[str, JSON]]:
        out: list[dict[str, JSON]] = []
        for index in list(self._open):
            out.extend(self._block_stop(index))
        start, usage = self._start_usage, event.usage
        # Finish carries cumulative usage; an upstream that reported input only at the start still counts
        usage = replace(
            usage,
            input_tokens=usage.input_tokens or start.input_tokens,
            cache_read_tokens=usage.cache_read_tokens or start.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens or start.cache_write_tokens,
        )
        delta = {"stop_reason": stop_reason_json(event.stop_reason), "stop_sequence": event.stop_sequence}
        out.append({"type": "message_delta", "delta": delta, "usage": usage_json(usage)})
        out.append({"type": "message_stop"})
        self._done = True
        return out


# ---------------------------------------------------------------------------------------------
# The dialect
# ---------------------------------------------------------------------------------------------


class ClaudeDialect:
    name = NAME

    # -- client side ------------------------------------------------------------------------

    def decode_request(self, body: JSON, *, path_model: str | None = None) -> Request:
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        model = body.get("model", path_model)
        if not isinstance(model, str) or not model:
            raise RequestError("model is required and must be a string", param="model")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise RequestError("stream must be a boolean", param="stream")
        request = decode_body(body, model=model, origin=NAME)
        if "stream" in body and not stream:
            # an explicit false/null is not the canonical default's absence: keep it for the round trip
            return replace(request, extra={**request.extra, "stream": stream})
        return replace(request, stream=bool(stream))

    def encode_response(self, response: Response, request: Request) -> bytes:
        return orjson.dumps(encode_message(response, request))

    def stream_encoder(self, request: Request) -> ClaudeStreamEncoder:
        return ClaudeStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        status = _CLIENT_STATUS.get(error.kind, error.status)
        headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
        return ErrorBody(status=status, body=orjson.dumps(error_json(error)), headers=headers)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    # -- upstream side ----------------------------------------------------------------------

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        body: dict[str, JSON] = {"model": request.model, **encode_body(request, options)}
        if request.stream:
            body["stream"] = True
        elif request.origin in FAMILY and "stream" in request.extra:
            body["stream"] = request.extra["stream"]
        return body

    def upstream_path(self, request: Request) -> str:
        return "/v1/messages"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {"anthropic-version": _header(client_headers, "anthropic-version") or ANTHROPIC_VERSION}
        beta = _header(client_headers, "anthropic-beta") or _bedrock_betas(request)
        if beta:
            headers["anthropic-beta"] = beta
        return headers

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_message(body, request)

    def stream_decoder(self, request: Request) -> ClaudeStreamDecoder:
        return ClaudeStreamDecoder(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        error_type, message = _error_fields(body)
        if not message.strip():
            message = f"the upstream answered HTTP {status}"
        return ProxyError(
            status=status,
            kind=_error_kind(error_type, message, status),
            message=message,
            retry_after=_header(headers, "retry-after"),
        )


def _bedrock_betas(request: Request) -> str | None:
    """A Bedrock client's body ``anthropic_beta`` list, as Anthropic's ``anthropic-beta`` header."""
    betas = request.extra.get("anthropic_beta") if request.origin == "bedrock" else None
    if isinstance(betas, list) and betas and all(isinstance(b, str) for b in betas):
        return ",".join(betas)
    return None


DIALECT = ClaudeDialect()
