"""Content blocks: Messages blocks to canonical parts and back, shared by requests and responses.

text, image, tool_use, tool_result, thinking (with signature) and redacted_thinking have canonical
parts; every other block travels as ``Opaque`` for the claude/bedrock family. Encoding accepts parts of
any origin: data-URL images become base64 sources, tool arguments become an input object, OpenAI
reasoning items ride in a thinking signature toward a Claude client (``reasoning_signature``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from llm_proxy.canonical import (
    JSON,
    Extra,
    Image,
    Native,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Text,
    ToolCall,
    ToolResult,
)
from llm_proxy.dialects.base import drop, log
from llm_proxy.dialects.claude.wire import FAMILY, NAME, read, tool_id
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.errors import RequestError
from llm_proxy.framing.carry import carry_kind, decode_carry, encode_carry, is_carry

# ---------------------------------------------------------------------------------------------
# Decoding content blocks (requests and responses share them)
# ---------------------------------------------------------------------------------------------


def _decode_text(block: dict[str, JSON], path: str) -> Part:
    return Text(
        text=read.string(block.get("text"), f"{path}.text"),
        cache_control=block.get("cache_control"),
        extra=rest(block, ("type", "text", "cache_control")),
    )


def _decode_image(block: dict[str, JSON], path: str) -> Part:
    source = block.get("source")
    extra = rest(block, ("type", "source", "cache_control"))
    cache = block.get("cache_control")
    if isinstance(source, dict):
        kind, keys = source.get("type"), set(source)
        if kind == "base64" and keys == {"type", "media_type", "data"}:
            media = read.string(source["media_type"], f"{path}.source.media_type")
            data = read.string(source["data"], f"{path}.source.data")
            return Image(media_type=media, data=data, cache_control=cache, extra=extra)
        if kind == "url" and keys == {"type", "url"}:
            return Image(url=read.string(source["url"], f"{path}.source.url"), cache_control=cache, extra=extra)
    # file ids and other sources have no canonical form: forward them within the family
    return Opaque(dialects=FAMILY, raw=block)


def _decode_tool_use(block: dict[str, JSON], path: str) -> Part:
    arguments = block.get("input")
    if not isinstance(arguments, dict):
        raise Invalid(f"{path}.input must be an object", f"{path}.input")
    return ToolCall(
        id=read.string(block.get("id"), f"{path}.id"),
        name=read.string(block.get("name"), f"{path}.name"),
        arguments=read.dumps(arguments, f"{path}.input"),
        cache_control=block.get("cache_control"),
        extra=rest(block, ("type", "id", "name", "input", "cache_control")),
    )


def _decode_result_item(item: JSON, path: str) -> Text | Image | Opaque:
    part = _decode_block(item, path)
    if isinstance(part, Text | Image | Opaque):
        return part
    return Opaque(dialects=FAMILY, raw=item)


def _decode_tool_result(block: dict[str, JSON], path: str) -> Part:
    content = block.get("content")
    parts: tuple[Text | Image | Opaque, ...]
    native: Native = {}
    if content is None:
        parts = ()
    elif isinstance(content, str):
        parts = (Text(text=content),)
    else:
        items = read.array(content, f"{path}.content")
        parts = tuple(_decode_result_item(item, f"{path}.content[{i}]") for i, item in enumerate(items))
        native = {"content": "list"}
    return ToolResult(
        call_id=read.string(block.get("tool_use_id"), f"{path}.tool_use_id"),
        content=parts,
        is_error=read.opt_boolean(block.get("is_error"), f"{path}.is_error"),
        native=native,
        cache_control=block.get("cache_control"),
        extra=rest(block, ("type", "tool_use_id", "content", "is_error", "cache_control")),
    )


def _decode_thinking(block: dict[str, JSON], path: str) -> Part:
    text = read.string(block.get("thinking"), f"{path}.thinking")
    signature = read.opt_string(block.get("signature"), f"{path}.signature")
    if signature is not None and is_carry(signature) and carry_kind(signature) == "openai-reasoning":
        # an OpenAI reasoning item this proxy showed the client as a thinking block: restore it
        fields = decode_carry(signature, "openai-reasoning")
        item_id, enc = fields.get("id"), fields.get("enc")
        return Reasoning(
            provider="openai",
            id=item_id if isinstance(item_id, str) else None,
            summary=(text,) if text else (),
            signature=enc if isinstance(enc, str) else None,
        )
    extra = rest(block, ("type", "thinking", "signature"))
    return Reasoning(provider="anthropic", text=text, signature=signature, extra=extra)


def _decode_redacted(block: dict[str, JSON], path: str) -> Part:
    data = read.string(block.get("data"), f"{path}.data")
    return Reasoning(provider="anthropic", redacted=data, extra=rest(block, ("type", "data")))


_BLOCK_DECODERS: dict[str, Callable[[dict[str, JSON], str], Part]] = {
    "text": _decode_text,
    "image": _decode_image,
    "tool_use": _decode_tool_use,
    "tool_result": _decode_tool_result,
    "thinking": _decode_thinking,
    "redacted_thinking": _decode_redacted,
}


def _decode_block(raw: JSON, path: str) -> Part:
    block = read.obj(raw, path)
    kind = read.string(block.get("type"), f"{path}.type")
    decoder = _BLOCK_DECODERS.get(kind)
    return decoder(block, path) if decoder else Opaque(dialects=FAMILY, raw=block)


def decode_blocks(raw: JSON, path: str) -> tuple[Part, ...]:
    return tuple(_decode_block(item, f"{path}[{i}]") for i, item in enumerate(read.array(raw, path)))


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


def finish_block(block: dict[str, JSON], cache_control: JSON, extra: Extra, same: bool) -> dict[str, JSON]:
    if cache_control is not None:
        block["cache_control"] = cache_control
    if same:
        merge_extra(block, extra, nested=True)
    return block


def encode_text(part: Text, same: bool) -> dict[str, JSON] | None:
    if not part.text:
        log.debug("dropped an empty text block toward %s", NAME)  # Claude rejects empty text blocks
        return None
    return finish_block({"type": "text", "text": part.text}, part.cache_control, part.extra, same)


def _encode_image(part: Image, same: bool) -> dict[str, JSON] | None:
    source = _image_source(part)
    if source is None:
        drop(NAME, "image whose URL is neither http(s) nor a base64 data URL")
        return None
    return finish_block({"type": "image", "source": source}, part.cache_control, part.extra, same)


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
    return finish_block(block, part.cache_control, part.extra, same)


def _tool_result_content(part: ToolResult, same: bool) -> JSON:
    if part.native.get("content") != "list" and all(isinstance(p, Text) for p in part.content):
        return "".join(p.text for p in part.content if isinstance(p, Text)) if part.content else None
    blocks = [encode_part(p, same, toward_client=False) for p in part.content]
    return [b for b in blocks if b is not None]


def _encode_tool_result(part: ToolResult, same: bool) -> dict[str, JSON]:
    block: dict[str, JSON] = {"type": "tool_result", "tool_use_id": tool_id(part.call_id)}
    content = _tool_result_content(part, same)
    if content is not None:
        block["content"] = content
    if part.is_error is not None:
        block["is_error"] = part.is_error
    return finish_block(block, part.cache_control, part.extra, same)


def _encode_thinking(part: Reasoning, same: bool, toward_client: bool) -> dict[str, JSON] | None:
    if part.redacted is not None:
        return finish_block({"type": "redacted_thinking", "data": part.redacted}, None, part.extra, same)
    if not part.signature and not toward_client:
        log.debug("dropped a thinking block without signature toward %s", NAME)  # Claude would reject it
        return None
    block: dict[str, JSON] = {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    return finish_block(block, None, part.extra, same)


def reasoning_signature(item_id: str | None, encrypted_content: str | None) -> str:
    """The thinking signature that carries an OpenAI reasoning item through a Claude client."""
    return encode_carry("openai-reasoning", {"id": item_id, "enc": encrypted_content})


def _encode_openai_reasoning(part: Reasoning, toward_client: bool) -> dict[str, JSON] | None:
    if toward_client:
        text = "\n\n".join(part.summary)
        return {"type": "thinking", "thinking": text, "signature": reasoning_signature(part.id, part.signature)}
    # Toward Claude, only a reasoning item that was a Claude block in disguise has meaning.
    if is_carry(part.signature):
        try:
            fields = decode_carry(part.signature or "", "claude-thinking")
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


def encode_part(part: Part, same: bool, *, toward_client: bool) -> dict[str, JSON] | None:
    match part:
        case Text():
            if toward_client:
                return finish_block({"type": "text", "text": part.text}, part.cache_control, part.extra, same)
            return encode_text(part, same)
        case Image():
            return _encode_image(part, same)
        case ToolCall():
            return _encode_tool_call(part, same)
        case ToolResult():
            return _encode_tool_result(part, same)
        case Reasoning(provider="anthropic"):
            return _encode_thinking(part, same, toward_client)
        case Reasoning():
            return _encode_openai_reasoning(part, toward_client)
        case Refusal():
            return encode_text(Text(text=part.text), same=False)  # Claude has no refusal block
        case Opaque():
            raw = _encode_opaque(part)
            return raw if isinstance(raw, dict) else None
    return None


def encode_parts(parts: Iterable[Part], same: bool) -> list[dict[str, JSON]]:
    blocks = [encode_part(p, same, toward_client=False) for p in parts]
    return [b for b in blocks if b is not None]
