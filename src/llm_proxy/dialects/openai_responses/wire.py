"""What every module of the Responses codec shares: the dialect's names and typed access to client JSON.

Every malformed shape becomes a ``RequestError`` naming the field; ``_rest`` keeps the wire fields
without a canonical home (and known ones given as null) and ``_apply_extra`` puts them back, which makes
the same-dialect round trip exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from llm_proxy.canonical import JSON, Extra, Request, Tool
from llm_proxy.errors import RequestError

NAME = "openai-responses"
FAMILY: frozenset[str] = frozenset({NAME})
"""The ``dialects`` of the ``Opaque`` parts and ``HostedTool`` s this codec creates."""

log = logging.getLogger("llm_proxy.dialects.openai_responses")

# Request.extra key (private, never sent) recording the shape of ``input``: "string" or "absent".
_INPUT_FORM = "_input_form"


def _obj(value: JSON, param: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise RequestError(f"{param} must be an object", param=param)
    return value


def _list(value: JSON, param: str) -> list[JSON]:
    if not isinstance(value, list):
        raise RequestError(f"{param} must be an array", param=param)
    return value


def _str(obj: Mapping[str, JSON], key: str, param: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RequestError(f"{param}.{key} must be a string", param=f"{param}.{key}")
    return value


def _opt_str(obj: Mapping[str, JSON], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{param}.{key} must be a string", param=f"{param}.{key}".lstrip("."))
    return value


def _opt_bool(obj: Mapping[str, JSON], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise RequestError(f"{key} must be a boolean", param=key)
    return value


def _opt_int(obj: Mapping[str, JSON], key: str) -> int | None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(f"{key} must be an integer", param=key)
    return value


def _opt_float(obj: Mapping[str, JSON], key: str) -> float | None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise RequestError(f"{key} must be a number", param=key)
    return value


def _rest(obj: Mapping[str, JSON], known: Iterable[str]) -> Extra:
    """Wire fields without a canonical home: unknown keys, and known keys given as null (to keep the null)."""
    known_set = set(known)
    return {k: v for k, v in obj.items() if k not in known_set or v is None}


def _apply_extra(out: dict[str, JSON], extra: Mapping[str, JSON]) -> dict[str, JSON]:
    """Re-add kept wire fields; a canonical value set since decoding wins over a kept null."""
    for key, value in extra.items():
        out.setdefault(key, value)
    return out


def is_content_part_type(kind: JSON) -> bool:
    """Whether ``kind`` names a message content part (``input_*``, ``output_*``, ``refusal``) rather than an item.

    Kept-as-is (opaque) values are told apart by this test alone when a turn is re-encoded, so the request
    decoder refuses content parts and items that it would misfile.
    """
    return isinstance(kind, str) and (kind.startswith(("input_", "output_")) or kind == "refusal")


def _default_text_type(role: str) -> str:
    return "output_text" if role == "assistant" else "input_text"


def _custom_names(request: Request) -> frozenset[str]:
    """Names of the tools the client declared as freeform ``custom`` tools."""
    return frozenset(t.name for t in request.tools or () if isinstance(t, Tool) and t.kind == "custom")
