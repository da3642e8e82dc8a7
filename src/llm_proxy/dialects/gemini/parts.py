"""Gemini parts to canonical parts and back, shared by requests, responses and streams.

A part is one of ``text`` (a thought when ``thought: true``), ``inlineData`` (an image), ``fileData``,
``functionCall``, ``functionResponse``, and others (code execution, ...) that travel as ``Opaque`` within
the dialect. Any part may carry a ``thoughtSignature`` (see ``wire`` for how it crosses other dialects).

Function calls often have no id: ``Ids`` mints stable ones and matches each ``functionResponse`` to the
call it answers by id, else by name and order. Toward Gemini, a result's ``name`` comes from its call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from llm_proxy.canonical import (
    JSON,
    Image,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Text,
    ToolCall,
    ToolResult,
)
from llm_proxy.dialects.base import drop, log
from llm_proxy.dialects.gemini.wire import (
    FAMILY,
    FOREIGN_CARRY,
    NAME,
    SIGNATURE_CARRY,
    is_minted,
    mint_call_id,
    read,
)
from llm_proxy.dialects.jsonread import Invalid, merge_extra, rest
from llm_proxy.errors import RequestError
from llm_proxy.framing.carry import decode_carry, encode_carry, is_carry

_RESULT_KEYS = ("output", "result", "content")
"""``functionResponse.response`` members that hold the whole result as text."""

# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def signature_carry(signature: str, attached: bool) -> str:
    fields: dict[str, JSON] = {"s": signature}
    if attached:
        fields["a"] = 1
    return encode_carry(SIGNATURE_CARRY, fields)


def _signed_reasoning(signature: str, attached: bool, text: str = "", extra: dict[str, JSON] | None = None) -> Part:
    """A Gemini signature as canonical reasoning (or the foreign reasoning a Gemini client carried back)."""
    if is_carry(signature):
        return _foreign_reasoning(signature)
    return Reasoning(provider="anthropic", text=text, signature=signature_carry(signature, attached), extra=extra or {})


def _foreign_reasoning(signature: str) -> Reasoning:
    fields = decode_carry(signature, FOREIGN_CARRY)
    provider = fields.get("p")
    if provider not in ("anthropic", "openai"):
        raise RequestError("a reasoning item carried by the proxy is not readable")
    summary = fields.get("m")

    def opt(key: str) -> str | None:
        value = fields.get(key)
        return value if isinstance(value, str) else None

    return Reasoning(
        provider=provider,
        text=opt("t") or "",
        summary=tuple(s for s in summary if isinstance(s, str)) if isinstance(summary, list) else (),
        signature=opt("s"),
        redacted=opt("r"),
        id=opt("i"),
    )


def gemini_signature(part: Reasoning) -> tuple[str, bool] | None:
    """(signature, attached to the next part) when ``part`` is a Gemini signature the codec showed as reasoning."""
    if not is_carry(part.signature) or part.provider != "anthropic":
        return None
    try:
        fields = decode_carry(part.signature or "", SIGNATURE_CARRY)
    except RequestError:
        return None
    signature = fields.get("s")
    if not isinstance(signature, str):
        return None
    return signature, fields.get("a") == 1


def foreign_signature(part: Reasoning) -> str:
    """Reasoning of another vendor, carried in a ``thoughtSignature`` through a Gemini client."""
    fields: dict[str, JSON] = {"p": part.provider}
    for key, value in (("t", part.text), ("s", part.signature), ("r", part.redacted), ("i", part.id)):
        if value:
            fields[key] = value
    if part.summary:
        fields["m"] = list(part.summary)
    return encode_carry(FOREIGN_CARRY, fields)


# ---------------------------------------------------------------------------------------------
# Call ids
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Ids:
    """Call ids across one conversation: minted for calls without one, matched for responses without one."""

    open_calls: list[tuple[str, str]] = field(default_factory=list)
    """(id, name) of the calls of the last model turn not answered yet."""
    names: dict[str, str] = field(default_factory=dict)
    """Call id -> function name (toward Gemini, a response names its function)."""
    scope: str = ""
    """Part of every minted id: an answer's ``responseId``, so calls of different answers differ."""

    def call(self, call_id: str | None, name: str, arguments: str, position: str) -> str:
        ident = call_id or mint_call_id(name, arguments, f"{self.scope}/{position}")
        self.open_calls.append((ident, name))
        self.names[ident] = name
        return ident

    def response(self, call_id: str | None, name: str, position: str) -> str:
        if call_id:
            self.open_calls = [c for c in self.open_calls if c[0] != call_id]
            return call_id
        match = next((c for c in self.open_calls if c[1] == name), None) or next(iter(self.open_calls), None)
        if match is None:
            return mint_call_id(name, "", position)
        self.open_calls.remove(match)
        return match[0]

    def new_turn(self) -> None:
        self.open_calls = []


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _decode_function_call(part: dict[str, JSON], path: str, ids: Ids) -> Part:
    call = read.obj(part.get("functionCall"), f"{path}.functionCall")
    name = read.string(call.get("name"), f"{path}.functionCall.name")
    args = call.get("args")
    arguments = read.dumps(args if args is not None else {}, f"{path}.functionCall.args")
    call_id = read.opt_string(call.get("id"), f"{path}.functionCall.id")
    extra = rest(part, ("functionCall", "thoughtSignature"))
    inner = rest(call, ("name", "args", "id"))
    if inner:
        extra["functionCall"] = inner
    if args is None:
        extra["$args"] = "absent"
    return ToolCall(id=ids.call(call_id, name, arguments, path), name=name, arguments=arguments, extra=extra)


def _decode_function_response(part: dict[str, JSON], path: str, ids: Ids) -> Part:
    response = read.obj(part.get("functionResponse"), f"{path}.functionResponse")
    name = read.string(response.get("name"), f"{path}.functionResponse.name")
    call_id = read.opt_string(response.get("id"), f"{path}.functionResponse.id")
    value = response.get("response")
    content: tuple[Text | Image | Opaque, ...]
    is_error = None
    extra: dict[str, JSON] = {"name": name}
    obj = value if isinstance(value, dict) else None
    key = next(iter(obj), None) if obj is not None and len(obj) == 1 else None
    if obj is not None and key in (*_RESULT_KEYS, "error") and isinstance(obj[key], str):
        content = (Text(text=obj[key]),)
        is_error = True if key == "error" else None
        extra["$key"] = key
    else:
        content = (Text(text=read.dumps(value if value is not None else {}, f"{path}.functionResponse.response")),)
    inner = rest(response, ("name", "response", "id"))
    if inner:
        extra["functionResponse"] = inner
    extra.update(rest(part, ("functionResponse", "thoughtSignature")))
    return ToolResult(call_id=ids.response(call_id, name, path), content=content, is_error=is_error, extra=extra)


def _decode_inline(part: dict[str, JSON], path: str) -> Part:
    data = read.obj(part.get("inlineData"), f"{path}.inlineData")
    mime = read.string(data.get("mimeType"), f"{path}.inlineData.mimeType")
    if not mime.startswith("image/") or set(data) != {"mimeType", "data"}:
        return Opaque(dialects=FAMILY, raw=part)
    payload = read.string(data.get("data"), f"{path}.inlineData.data")
    return Image(media_type=mime, data=payload, extra=rest(part, ("inlineData", "thoughtSignature")))


def _decode_file(part: dict[str, JSON], path: str) -> Part:
    data = read.obj(part.get("fileData"), f"{path}.fileData")
    uri, mime = data.get("fileUri"), data.get("mimeType")
    if not isinstance(uri, str) or not isinstance(mime, str) or not mime.startswith("image/"):
        return Opaque(dialects=FAMILY, raw=part)
    if not uri.startswith(("http://", "https://")) or set(data) != {"mimeType", "fileUri"}:
        return Opaque(dialects=FAMILY, raw=part)
    return Image(url=uri, media_type=mime, extra=rest(part, ("fileData", "thoughtSignature")))


def decode_part(raw: JSON, path: str, ids: Ids) -> list[Part]:
    """One wire part as canonical parts: a signature on a non-thought part becomes reasoning before it."""
    part = read.obj(raw, path)
    signature = read.opt_string(part.get("thoughtSignature"), f"{path}.thoughtSignature")
    if part.get("thought") is True:
        text = read.string(part.get("text", ""), f"{path}.text")
        extra = rest(part, ("text", "thought", "thoughtSignature"))
        if "text" not in part:
            extra["$text"] = "absent"
        if signature is not None:
            return [_signed_reasoning(signature, False, text, extra)]
        return [Reasoning(provider="anthropic", text=text, extra=extra)]
    decoded: Part
    if "text" in part:
        decoded = Text(text=read.string(part["text"], f"{path}.text"), extra=rest(part, ("text", "thoughtSignature")))
    elif "functionCall" in part:
        decoded = _decode_function_call(part, path, ids)
    elif "functionResponse" in part:
        decoded = _decode_function_response(part, path, ids)
    elif "inlineData" in part:
        decoded = _decode_inline(part, path)
    elif "fileData" in part:
        decoded = _decode_file(part, path)
    else:
        return [Opaque(dialects=FAMILY, raw=part)]
    if signature is None or isinstance(decoded, Opaque):
        return [decoded]
    return [_signed_reasoning(signature, True), decoded]


def decode_parts(raw: JSON, path: str, ids: Ids) -> tuple[Part, ...]:
    out: list[Part] = []
    for i, item in enumerate(read.array(raw, path)):
        out.extend(decode_part(item, f"{path}[{i}]", ids))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def call_args(call: ToolCall) -> dict[str, JSON]:
    """``ToolCall.arguments`` (JSON text) as the object Gemini wants; nothing is lost on bad JSON."""
    if call.kind == "custom":
        return {"input": call.arguments}
    if not call.arguments.strip():
        return {}
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    log.debug("tool call %s: arguments are not a JSON object, sent as _raw_arguments", call.id)
    return {"_raw_arguments": call.arguments}


def _image(part: Image) -> dict[str, JSON] | None:
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    url = part.url or ""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media, *params = header.split(";")
        if "base64" in params:
            return {"inlineData": {"mimeType": media or "image/png", "data": data}}
    elif url.startswith(("http://", "https://")):
        return {"fileData": {"mimeType": part.media_type or "image/jpeg", "fileUri": url}}
    drop(NAME, "image whose URL is neither http(s) nor a base64 data URL")
    return None


def _result(part: ToolResult, names: dict[str, str], same: bool) -> dict[str, JSON]:
    texts = [p.text for p in part.content if isinstance(p, Text)]
    if len(texts) != len(part.content):
        drop(NAME, "non-text content of a tool result")
    text = "".join(texts)
    key = part.extra.get("$key") if same else None
    response: JSON
    if same and key is None:
        try:
            response = orjson.loads(text)
        except orjson.JSONDecodeError:
            response = {"output": text}
    else:
        response = {str(key or ("error" if part.is_error else "output")): text}
    name = part.extra.get("name") if same else None
    out: dict[str, JSON] = {"name": name if isinstance(name, str) else names.get(part.call_id, "")}
    if not is_minted(part.call_id):
        out["id"] = part.call_id
    out["response"] = response
    inner = part.extra.get("functionResponse") if same else None
    if isinstance(inner, dict):
        merge_extra(out, inner)
    wire: dict[str, JSON] = {"functionResponse": out}
    if same:
        merge_extra(wire, {k: v for k, v in part.extra.items() if k not in ("name", "$key", "functionResponse")})
    return wire


def _call(part: ToolCall, same: bool) -> dict[str, JSON]:
    call: dict[str, JSON] = {"name": part.name}
    if not (same and part.extra.get("$args") == "absent"):
        call["args"] = call_args(part)
    if not is_minted(part.id):
        call["id"] = part.id
    inner = part.extra.get("functionCall") if same else None
    if isinstance(inner, dict):
        merge_extra(call, inner)
    wire: dict[str, JSON] = {"functionCall": call}
    if same:
        merge_extra(wire, {k: v for k, v in part.extra.items() if k not in ("functionCall", "$args")})
    return wire


def _with_extra(wire: dict[str, JSON], extra: dict[str, JSON], same: bool) -> dict[str, JSON]:
    if same:
        merge_extra(wire, {k: v for k, v in extra.items() if not k.startswith("$")})
    return wire


@dataclass(slots=True)
class PartEncoder:
    """Canonical parts to wire parts, keeping a signature that belongs on the next part until it comes."""

    same: bool
    """The parts were decoded from this dialect: their ``extra`` is written back."""
    toward_client: bool
    names: dict[str, str] = field(default_factory=dict)
    """Call id -> function name, for results whose call came earlier."""
    pending: str | None = None

    def encode(self, part: Part) -> dict[str, JSON] | None:
        wire = self._encode(part)
        if wire is not None and self.pending is not None and not isinstance(part, Reasoning):
            wire["thoughtSignature"] = self.pending
            self.pending = None
        return wire

    def flush(self) -> dict[str, JSON] | None:
        """A signature still waiting when the content ends: on an empty text part of its own."""
        if self.pending is None:
            return None
        wire: dict[str, JSON] = {"text": "", "thoughtSignature": self.pending}
        self.pending = None
        return wire

    def encode_all(self, parts: Iterable[Part]) -> list[dict[str, JSON]]:
        out = [w for w in (self.encode(p) for p in parts) if w is not None]
        tail = self.flush()
        return [*out, tail] if tail is not None else out

    def _encode(self, part: Part) -> dict[str, JSON] | None:
        match part:
            case Text():
                if not part.text and not self.toward_client and not self.same:
                    return None
                return _with_extra({"text": part.text}, part.extra, self.same)
            case Image():
                wire = _image(part)
                return _with_extra(wire, part.extra, self.same) if wire is not None else None
            case ToolCall():
                self.names[part.id] = part.name
                return _call(part, self.same)
            case ToolResult():
                return _result(part, self.names, self.same)
            case Reasoning():
                return self._reasoning(part)
            case Refusal():
                return {"text": part.text}
            case Opaque():
                if part.dialects & FAMILY and isinstance(part.raw, dict):
                    return dict(part.raw)
                drop(NAME, "part of another dialect")
        return None

    def _reasoning(self, part: Reasoning) -> dict[str, JSON] | None:
        own = gemini_signature(part)
        if own is not None:
            signature, attached = own
            if attached and not part.text:
                self.pending = signature
                return None
            return self._thought(part, signature)
        if part.provider == "anthropic" and part.signature is None and part.redacted is None:
            if self.toward_client or self.same:
                return self._thought(part, None)
            return None  # unsigned thinking of another dialect: Gemini cannot verify it, and needs none
        if self.toward_client:
            text = part.text or "\n\n".join(part.summary)
            return {"text": text, "thought": True, "thoughtSignature": foreign_signature(part)}
        drop(NAME, "reasoning of another vendor")
        return None

    def _thought(self, part: Reasoning, signature: str | None) -> dict[str, JSON]:
        wire: dict[str, JSON] = {} if self.same and part.extra.get("$text") == "absent" else {"text": part.text}
        wire["thought"] = True
        if signature is not None:
            wire["thoughtSignature"] = signature
        return _with_extra(wire, part.extra, self.same)


def check_path(value: JSON, path: str) -> None:
    """Raise ``Invalid`` unless ``value`` is a list of objects (a content's ``parts``)."""
    for i, item in enumerate(read.array(value, path)):
        if not isinstance(item, dict):
            raise Invalid(f"{path}[{i}] must be an object", f"{path}[{i}]")
