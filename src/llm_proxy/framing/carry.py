"""Opaque, versioned envelopes that carry one vendor's reasoning state through another vendor's client.

A Claude ``thinking`` block must come back with its signature, and an OpenAI ``reasoning`` item with
its ``encrypted_content``, or the next turn fails. When the client speaks another dialect, the proxy
hides what it needs inside a field that client echoes back verbatim (a Responses ``encrypted_content``,
a Claude ``signature``) and restores the original block when it returns.

Format: ``lpx1.<payload>.<mac>`` where ``payload`` is base64url (unpadded) of compact JSON
``{"k": kind, ...}`` and ``mac`` is base64url of the first 12 bytes of HMAC-SHA256 over the payload
text. The MAC key is fixed, so this detects corruption and tampering by a client, not forgery by a
determined one; that is enough because the vendor validates its own signature inside anyway, and
it keeps every codec pure (no per-deployment secret). ``lpx1`` is the version: a future format
gets a new prefix and old values stay readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from llm_proxy.errors import RequestError

PREFIX = "lpx1."
_KEY = b"llm-proxy carry v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: str) -> str:
    return _b64(hmac.new(_KEY, payload.encode("ascii"), hashlib.sha256).digest()[:12])


def is_carry(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)


def encode_carry(kind: str, fields: dict[str, Any]) -> str:
    payload = _b64(orjson.dumps({"k": kind, **fields}))
    return f"{PREFIX}{payload}.{_mac(payload)}"


def carry_kind(value: str) -> str:
    """The kind of an intact envelope (a codec leaves envelopes of kinds it does not restore as they are).

    Raises ``RequestError`` (400) when the value is not intact, as ``decode_carry`` does.
    """
    kind = _fields(value).get("k")
    if not isinstance(kind, str):
        raise RequestError("a reasoning item carried by the proxy is not readable")
    return kind


def decode_carry(value: str, kind: str) -> dict[str, Any]:
    """The fields of an envelope made by ``encode_carry(kind, ...)``.

    Raises ``RequestError`` (400) when the value is not intact: the client changed or truncated it.
    """
    fields = _fields(value)
    if fields.get("k") != kind:
        raise RequestError("a reasoning item carried by the proxy is of the wrong kind for this field")
    del fields["k"]
    return fields


def _fields(value: str) -> dict[str, Any]:
    body = value[len(PREFIX) :]
    payload, _, mac = body.partition(".")
    # An envelope is base64url text: anything else was never made by the proxy (and hmac wants ASCII).
    if not mac or not payload.isascii() or not mac.isascii() or not hmac.compare_digest(mac, _mac(payload)):
        raise RequestError("a reasoning item carried by the proxy was modified or truncated by the client")
    try:
        fields = orjson.loads(_unb64(payload))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise RequestError("a reasoning item carried by the proxy is not readable") from exc
    if not isinstance(fields, dict):
        raise RequestError("a reasoning item carried by the proxy is of the wrong kind for this field")
    return fields
