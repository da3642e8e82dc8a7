"""What every part of the Converse codec shares: the dialect's name, its JSON reader and the small mappings.

Converse writes camelCase fields and unions as one-key objects (``{"text": ...}``, ``{"toolUse": {...}}``);
binary values (image and document bytes, redacted reasoning) are base64 text in JSON. The cache point mapping
(``cachePoint`` blocks after the content they close <-> Claude ``cache_control`` on that content) and the image
formats live here because requests, responses and tool results all use them.
"""

from __future__ import annotations

import base64
import binascii

from llm_proxy.canonical import JSON
from llm_proxy.dialects.jsonread import Reader

NAME = "bedrock-converse"
OWN = frozenset({NAME})
"""The ``dialects`` of an ``Opaque`` block only a Converse peer can read (videos, S3 sources, guard content)."""

read = Reader()
"""The codec's JSON reader (AWS wording: "must be an array")."""

IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")


def media_type(image_format: str) -> str:
    return f"image/{image_format}"


def image_format(media: str | None) -> str | None:
    """``jpeg`` for ``image/jpeg`` (``image/jpg`` too); None for a type Converse cannot name."""
    if media is None:
        return None
    sub = media.lower().removeprefix("image/")
    sub = "jpeg" if sub == "jpg" else sub
    return sub if sub in IMAGE_FORMATS else None


def cache_control(point: JSON) -> dict[str, JSON] | None:
    """A ``cachePoint`` object as the Claude marker (``{"type": "default", "ttl": "1h"}`` -> ephemeral, 1h)."""
    if not isinstance(point, dict) or point.get("type") != "default" or not set(point) <= {"type", "ttl"}:
        return None
    ttl = point.get("ttl")
    if ttl is not None and not isinstance(ttl, str):
        return None
    return {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}


def cache_point(control: JSON) -> dict[str, JSON] | None:
    """A Claude ``cache_control`` marker as the ``cachePoint`` block that follows the cached content."""
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        return None
    point: dict[str, JSON] = {"type": "default"}
    if isinstance(control.get("ttl"), str):
        point["ttl"] = control["ttl"]
    return {"cachePoint": point}


def redacted_text(value: str) -> str | None:
    """The redacted reasoning bytes (base64 in JSON) as the canonical text; None when not base64 of UTF-8."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def redacted_bytes(text: str) -> str:
    """The canonical redacted reasoning as Converse's base64 ``redactedContent``."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
