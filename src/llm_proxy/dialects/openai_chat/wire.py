"""What every module of the Chat codec shares: the dialect's names and the small validators.

Every malformed field of a client body becomes a ``RequestError`` naming its path; ``_rest`` keeps the
wire fields without a canonical home (and known ones sent as null) for the same-dialect round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from llm_proxy.canonical import JSON, Extra, Request
from llm_proxy.errors import RequestError

NAME = "openai-chat"
_FAMILY = frozenset({NAME})
_REASONING_CARRY = "openai-reasoning"

log = logging.getLogger("llm_proxy.dialects.openai_chat")


def _obj(value: JSON, param: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise RequestError(f"`{param}` must be an object", param=param)
    return value


def _list(value: JSON, param: str) -> list[JSON]:
    if not isinstance(value, list):
        raise RequestError(f"`{param}` must be an array", param=param)
    return value


def _str(value: JSON, param: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"`{param}` must be a string", param=param)
    return value


def _opt_str(value: JSON, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _bool(value: JSON, param: str) -> bool:
    if not isinstance(value, bool):
        raise RequestError(f"`{param}` must be a boolean", param=param)
    return value


def _opt_bool(value: JSON, param: str) -> bool | None:
    return None if value is None else _bool(value, param)


def _int(value: JSON, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"`{param}` must be an integer", param=param)
    return value


def _number(value: JSON, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"`{param}` must be a number", param=param)
    return value


def _rest(obj: Mapping[str, JSON], consumed: tuple[str, ...]) -> Extra:
    """Fields of ``obj`` kept for the round trip: unknown ones, and known ones sent as null."""
    return {k: v for k, v in obj.items() if k not in consumed or (v is None and k != "type")}


def _same(request: Request) -> bool:
    return request.origin == NAME


_ABSENT_MARK = "_lpx_content_absent"
"""Message.extra flag: the assistant message had no ``content`` key (not even null)."""


def _put(body: dict[str, JSON], key: str, value: JSON) -> None:
    if value is not None:
        body[key] = value
