"""Converse content blocks to canonical parts and back, shared by messages, tool results and responses.

A Converse block is a one-key union: ``text``, ``image``, ``document``, ``toolUse``, ``toolResult``,
``reasoningContent``, ``cachePoint`` and more. ``cachePoint`` closes the cached prefix after the block before
it: it becomes that part's ``cache_control`` (Claude's marker) and comes back after it. Documents that Claude
can read (a PDF's bytes, a text file's text) travel as Claude ``document`` blocks (``Opaque`` for both
families); every other block without a canonical part is ``Opaque`` for Converse only. Reasoning is Claude's
(signed text, or redacted bytes); an OpenAI reasoning item rides in the signature of a reasoning block
toward a Converse client (the carry envelope Claude clients get too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeGuard

from llm_proxy.canonical import JSON, Image, Opaque, Part, Reasoning, Refusal, Text, ToolCall, ToolResult
from llm_proxy.dialects import claude
from llm_proxy.dialects.base import drop, log
from llm_proxy.dialects.bedrock_converse.wire import (
    NAME,
    OWN,
    cache_control,
    cache_point,
    image_format,
    media_type,
    read,
    redacted_bytes,
    redacted_text,
)
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.errors import RequestError
from llm_proxy.framing.carry import carry_kind, decode_carry, is_carry

DOCUMENT_DIALECTS = claude.FAMILY | OWN
"""Who reads a document decoded from Converse: Claude (as a ``document`` block) and Converse."""

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def union_member(block: dict[str, JSON], path: str) -> tuple[str, JSON]:
    """The one member of a Converse union object."""
    if len(block) != 1:
        raise read.fail(path, "must have exactly one member")
    [(key, value)] = block.items()
    return key, value


def _decode_image(value: JSON, block: dict[str, JSON], path: str) -> Part:
    obj = read.obj(value, f"{path}.image")
    source = read.obj(obj.get("source"), f"{path}.image.source")
    fmt = read.string(obj.get("format"), f"{path}.image.format")
    if set(source) != {"bytes"}:
        return Opaque(dialects=OWN, raw=block)  # an S3 location means nothing to another vendor
    data = read.string(source["bytes"], f"{path}.image.source.bytes")
    return Image(media_type=media_type(fmt), data=data, extra=rest(obj, ("format", "source")))


def claude_document(doc: dict[str, JSON]) -> dict[str, JSON] | None:
    """A Converse document as the Claude ``document`` block saying the same; None when Claude has no such form."""
    source, name, fmt = doc.get("source"), doc.get("name"), doc.get("format")
    if not set(doc) <= {"format", "name", "source"} or not isinstance(name, str) or not isinstance(source, dict):
        return None
    if fmt == "pdf" and set(source) == {"bytes"} and isinstance(source["bytes"], str):
        wire: dict[str, JSON] = {"type": "base64", "media_type": "application/pdf", "data": source["bytes"]}
    elif fmt == "txt" and set(source) == {"text"} and isinstance(source["text"], str):
        wire = {"type": "text", "media_type": "text/plain", "data": source["text"]}
    else:
        return None
    return {"type": "document", "source": wire, "title": name}


def converse_document(block: dict[str, JSON]) -> list[dict[str, JSON]] | None:
    """A Claude ``document`` block as a Converse document (and its cache point); None when Converse cannot say it."""
    source, title = block.get("source"), block.get("title", "document")
    if not set(block) <= {"type", "source", "title", "cache_control"} or not isinstance(source, dict):
        return None
    data = source.get("data")
    if not isinstance(title, str) or not isinstance(data, str):
        return None
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        doc: dict[str, JSON] = {"format": "pdf", "name": title, "source": {"bytes": data}}
    elif source.get("type") == "text" and source.get("media_type") == "text/plain":
        doc = {"format": "txt", "name": title, "source": {"text": data}}
    else:
        return None
    point = cache_point(block.get("cache_control"))
    return [{"document": doc}] + ([point] if point else [])


def _decode_document(value: JSON, block: dict[str, JSON], path: str) -> Part:
    claude_form = claude_document(read.obj(value, f"{path}.document"))
    if claude_form is None:
        return Opaque(dialects=OWN, raw=block)
    return Opaque(dialects=DOCUMENT_DIALECTS, raw=claude_form)


def _decode_tool_use(value: JSON, block: dict[str, JSON], path: str) -> Part:
    obj = read.obj(value, f"{path}.toolUse")
    if "input" not in obj:
        raise read.fail(f"{path}.toolUse.input", "is required")
    return ToolCall(
        id=read.string(obj.get("toolUseId"), f"{path}.toolUse.toolUseId"),
        name=read.string(obj.get("name"), f"{path}.toolUse.name"),
        arguments=read.dumps(obj["input"], f"{path}.toolUse.input"),
        extra=rest(obj, ("toolUseId", "name", "input")),
    )


def _decode_result_item(raw: JSON, path: str) -> Text | Image | Opaque:
    block = read.obj(raw, path)
    key, value = union_member(block, path)
    if key == "json":
        return Text(text=read.dumps(value, f"{path}.json"), extra={"json": value})
    part = _decode_block(block, path)
    return part if isinstance(part, Text | Image | Opaque) else Opaque(dialects=OWN, raw=block)


_STATUS = {"success": False, "error": True}


def _decode_tool_result(value: JSON, block: dict[str, JSON], path: str) -> Part:
    obj = read.obj(value, f"{path}.toolResult")
    status = read.opt_string(obj.get("status"), f"{path}.toolResult.status")
    if status is not None and status not in _STATUS:
        raise read.fail(f"{path}.toolResult.status", "must be success or error")
    items = read.array(obj.get("content", []), f"{path}.toolResult.content")
    return ToolResult(
        call_id=read.string(obj.get("toolUseId"), f"{path}.toolResult.toolUseId"),
        content=tuple(_decode_result_item(item, f"{path}.toolResult.content[{i}]") for i, item in enumerate(items)),
        is_error=None if status is None else _STATUS[status],
        native={"content": "list"},
        extra=rest(obj, ("toolUseId", "content", "status")),
    )


def _restore_openai(text: str, signature: str, path: str) -> Reasoning:
    """An OpenAI reasoning item this proxy showed a Converse client as a reasoning block."""
    fields = decode_carry(signature, "openai-reasoning")
    item_id, encrypted = fields.get("id"), fields.get("enc")
    # the envelope's MAC key is public: its fields are client input like any other
    if not (item_id is None or isinstance(item_id, str)) or not (encrypted is None or isinstance(encrypted, str)):
        raise Invalid("a reasoning item carried by the proxy is not readable", path)
    return Reasoning(provider="openai", id=item_id, summary=(text,) if text else (), signature=encrypted)


def _decode_reasoning(value: JSON, block: dict[str, JSON], path: str) -> Part:
    key, inner = union_member(read.obj(value, f"{path}.reasoningContent"), f"{path}.reasoningContent")
    if key == "redactedContent":
        data = redacted_text(read.string(inner, f"{path}.reasoningContent.redactedContent"))
        return Opaque(dialects=OWN, raw=block) if data is None else Reasoning(provider="anthropic", redacted=data)
    if key != "reasoningText":
        return Opaque(dialects=OWN, raw=block)
    obj = read.obj(inner, f"{path}.reasoningContent.reasoningText")
    text = read.string(obj.get("text"), f"{path}.reasoningContent.reasoningText.text")
    signature = read.opt_string(obj.get("signature"), f"{path}.reasoningContent.reasoningText.signature")
    if signature is not None and is_carry(signature) and carry_kind(signature) == "openai-reasoning":
        # other envelopes (a Gemini thought signature) are signatures like any other, restored by their codec
        return _restore_openai(text, signature or "", f"{path}.reasoningContent.reasoningText.signature")
    extra = rest(obj, ("text", "signature"))
    return Reasoning(provider="anthropic", text=text, signature=signature, extra=extra)


def _decode_text(value: JSON, block: dict[str, JSON], path: str) -> Part:
    return Text(text=read.string(value, f"{path}.text"))


_DECODERS: dict[str, Callable[[JSON, dict[str, JSON], str], Part]] = {
    "text": _decode_text,
    "image": _decode_image,
    "document": _decode_document,
    "toolUse": _decode_tool_use,
    "toolResult": _decode_tool_result,
    "reasoningContent": _decode_reasoning,
}


def _decode_block(block: dict[str, JSON], path: str) -> Part:
    key, value = union_member(block, path)
    decoder = _DECODERS.get(key)
    return decoder(value, block, path) if decoder else Opaque(dialects=OWN, raw=block)


def _cacheable_document(part: Part | None) -> TypeGuard[Opaque]:
    """A document decoded into Claude's form, not yet cached: the cache point becomes its ``cache_control``."""
    return (
        isinstance(part, Opaque)
        and part.dialects == DOCUMENT_DIALECTS
        and isinstance(part.raw, dict)
        and "cache_control" not in part.raw
    )


def _cacheable(part: Part) -> bool:
    return isinstance(part, Text | Image | ToolCall | ToolResult) and part.cache_control is None


def decode_blocks(raw: JSON, path: str) -> tuple[Part, ...]:
    """A content list as parts; a ``cachePoint`` becomes the ``cache_control`` of the part before it."""
    parts: list[Part] = []
    for i, item in enumerate(read.array(raw, path)):
        block = read.obj(item, f"{path}[{i}]")
        if set(block) == {"cachePoint"}:
            control = cache_control(block["cachePoint"])
            last = parts[-1] if parts else None
            if control is not None and isinstance(last, Text | Image | ToolCall | ToolResult) and _cacheable(last):
                parts[-1] = replace(last, cache_control=control)
                continue
            if control is not None and _cacheable_document(last):
                parts[-1] = replace(last, raw={**last.raw, "cache_control": control})
                continue
            parts.append(Opaque(dialects=OWN, raw=block))
            continue
        parts.append(_decode_block(block, f"{path}[{i}]"))
    return tuple(parts)


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

_IMAGE_MAGIC = (("iVBOR", "png"), ("/9j/", "jpeg"), ("R0lGOD", "gif"), ("UklGR", "webp"))


def _with_cache(block: dict[str, JSON], control: JSON) -> list[dict[str, JSON]]:
    point = cache_point(control)
    return [block, point] if point is not None else [block]


def _image_bytes(image: Image) -> tuple[str | None, str] | None:
    """(media type, base64 data) of an inline image or a base64 data URL; None for a URL Converse cannot fetch."""
    if image.data is not None:
        return image.media_type, image.data
    url = image.url or ""
    if not url.startswith("data:"):
        return None
    head, _, data = url[5:].partition(",")
    media, *params = head.split(";")
    return (media or None, data) if "base64" in params else None


def _encode_image(part: Image, same: bool) -> list[dict[str, JSON]]:
    found = _image_bytes(part)
    if found is None:
        drop(NAME, "image by URL (Converse takes bytes or an S3 location)")
        return []
    media, data = found
    fmt = image_format(media) or next((f for prefix, f in _IMAGE_MAGIC if data.startswith(prefix)), "png")
    image: dict[str, JSON] = {"format": fmt, "source": {"bytes": data}}
    if same:
        merge_extra(image, part.extra)
    return _with_cache({"image": image}, part.cache_control)


def _encode_text(part: Text, same: bool, toward_client: bool) -> list[dict[str, JSON]]:
    if same and "json" in part.extra:
        return _with_cache({"json": part.extra["json"]}, part.cache_control)
    if not part.text and not toward_client:
        log.debug("dropped an empty text block toward %s", NAME)  # Converse rejects blank text
        return []
    return _with_cache({"text": part.text}, part.cache_control)


def _encode_tool_call(part: ToolCall, same: bool) -> list[dict[str, JSON]]:
    use: dict[str, JSON] = {"toolUseId": claude.tool_id(part.id), "name": part.name, "input": claude.tool_input(part)}
    if same:
        merge_extra(use, part.extra)
    return _with_cache({"toolUse": use}, part.cache_control)


def _encode_tool_result(part: ToolResult, same: bool) -> list[dict[str, JSON]]:
    content: list[dict[str, JSON]] = []
    for item in part.content:
        content.extend(b for b in encode_part(item, same, toward_client=False) if "cachePoint" not in b)
    result: dict[str, JSON] = {"toolUseId": claude.tool_id(part.call_id), "content": content}
    if part.is_error is not None:
        result["status"] = "error" if part.is_error else "success"
    if same:
        merge_extra(result, part.extra)
    return _with_cache({"toolResult": result}, part.cache_control)


def reasoning_text(text: str, signature: str | None) -> dict[str, JSON]:
    inner: dict[str, JSON] = {"text": text}
    if signature:
        inner["signature"] = signature
    return {"reasoningContent": {"reasoningText": inner}}


def _encode_thinking(part: Reasoning, same: bool, toward_client: bool) -> list[dict[str, JSON]]:
    if part.redacted is not None:
        return [{"reasoningContent": {"redactedContent": redacted_bytes(part.redacted)}}]
    if not part.signature and not toward_client:
        log.debug("dropped a reasoning block without signature toward %s", NAME)  # Claude would reject it
        return []
    block = reasoning_text(part.text, part.signature)
    if same:
        merge_extra(block["reasoningContent"]["reasoningText"], part.extra)
    return [block]


def _encode_openai_reasoning(part: Reasoning, toward_client: bool) -> list[dict[str, JSON]]:
    if toward_client:
        return [reasoning_text("\n\n".join(part.summary), claude.reasoning_signature(part.id, part.signature))]
    # toward Converse, only a reasoning item that was a Claude block in disguise has meaning
    if is_carry(part.signature):
        try:
            fields = decode_carry(part.signature or "", "claude-thinking")
        except RequestError:
            fields = {}
        if isinstance(fields.get("r"), str):
            return [{"reasoningContent": {"redactedContent": redacted_bytes(fields["r"])}}]
        if isinstance(fields.get("t"), str) and isinstance(fields.get("s"), str):
            return [reasoning_text(fields["t"], fields["s"])]
    drop(NAME, "reasoning item of another vendor")
    return []


def _encode_opaque(part: Opaque) -> list[dict[str, JSON]]:
    raw = part.raw
    if isinstance(raw, dict) and raw.get("type") == "document" and part.dialects & DOCUMENT_DIALECTS:
        doc = converse_document(raw)
        if doc is not None:
            return doc
    elif NAME in part.dialects and isinstance(raw, dict):
        return [raw]
    drop(NAME, "block of another dialect")
    return []


def encode_part(part: Part, same: bool, *, toward_client: bool) -> list[dict[str, JSON]]:
    """The Converse blocks of one part (a cache point after it when it is cached); none when it has no form."""
    match part:
        case Text():
            return _encode_text(part, same, toward_client)
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
            return _encode_text(Text(text=part.text), False, toward_client)
        case Opaque():
            return _encode_opaque(part)
    return []


def encode_parts(parts: Iterable[Part], same: bool, *, toward_client: bool = False) -> list[dict[str, JSON]]:
    return [block for part in parts for block in encode_part(part, same, toward_client=toward_client)]
