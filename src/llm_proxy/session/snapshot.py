"""Canonical messages to bytes and back, for conversations the proxy keeps in its state store.

A tagged JSON form of the frozen canonical dataclasses: every object carries its class name in ``"_t"``
and only the classes listed here can be rebuilt, so a stored value can never instantiate anything else.
Written by hand because the canonical types are plain dataclasses (no pydantic/msgspec models) and
this is twenty lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from llm_proxy.canonical import (
    Image,
    Message,
    Opaque,
    Reasoning,
    RedactedThinking,
    Refusal,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Message, Text, Image, ToolCall, ToolResult, Thinking, RedactedThinking, Reasoning, Refusal, Opaque)
}
_SETS = {("Opaque", "dialects")}
_TUPLES = {("Message", "content"), ("ToolResult", "content"), ("Reasoning", "summary"), ("Reasoning", "content")}


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        out: dict[str, Any] = {"_t": name}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = sorted(item) if (name, f.name) in _SETS else _dump(item)
        return out
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    return value


def _load(value: dict[str, Any]) -> Any:
    name = value.get("_t")
    if name not in _TYPES:
        raise ValueError(f"a stored conversation holds an unknown part type {name!r}")
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key == "_t":
            continue
        if (name, key) in _SETS:
            kwargs[key] = frozenset(item)
        elif (name, key) in _TUPLES and item is not None:
            kwargs[key] = tuple(_load(v) if isinstance(v, dict) else v for v in item)
        else:
            kwargs[key] = item  # plain JSON: extra, cache_control, raw, strings, numbers
    return _TYPES[name](**kwargs)


def dump_messages(messages: Sequence[Message]) -> bytes:
    return orjson.dumps([_dump(m) for m in messages])


def load_messages(data: bytes) -> tuple[Message, ...]:
    return tuple(_load(item) for item in orjson.loads(data))
