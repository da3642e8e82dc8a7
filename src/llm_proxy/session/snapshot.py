"""Canonical messages to bytes and back, for conversations the proxy keeps in its state store.

The stored form is ``{"v": FORMAT, "messages": [...]}``: each message an object of its fields, each
content part an object of its fields plus its ``part_kind`` under ``"kind"``. Nothing here names a
part type: reading follows the type hints of the canonical dataclasses, so a tuple field comes back a
tuple, a set a frozenset, and a field typed as a union of parts rebuilds exactly the parts
``canonical.PART_TYPES`` lists (never an arbitrary class named in the data). Fields equal to their
default are left out, which keeps records small and lets a new defaulted field read older records.

Anything else (records written before this format, damaged bytes, an unknown kind or field) raises
``ValueError`` or ``TypeError``; the conversation store treats that as "not found".
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson

from llm_proxy.canonical import PART_TYPES, Message

FORMAT = 2
"""Bumped whenever a stored record would read differently; version 1 was an untagged list (refused)."""

_KIND = "part_kind"  # the class tag, apart from fields named kind (a tool call's function or custom)


_HINTS: dict[type[Any], dict[str, Any]] = {cls: get_type_hints(cls) for cls in (Message, *PART_TYPES.values())}
"""Field types of every class a record can hold, resolved once (the hints are strings until resolved)."""


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        kind = getattr(value, "part_kind", None)
        if kind is not None:
            out[_KIND] = kind
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and item == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and item == f.default_factory():
                continue
            out[f.name] = _dump(item)
        return out
    if isinstance(value, frozenset):
        return sorted(value)  # sorted so equal conversations give equal bytes
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    return value


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _load_typed(value: Any, hint: Any) -> Any:
    """``value`` read as ``hint`` says: containers and parts are rebuilt, plain JSON stays as it is."""
    if value is None:
        return None
    origin = get_origin(hint)
    if origin is tuple:
        (item_hint, _ellipsis) = get_args(hint)
        return tuple(_load_typed(v, item_hint) for v in _list(value))
    if origin is frozenset:
        return frozenset(_list(value))
    if _is_union(hint):
        options = [a for a in get_args(hint) if a is not type(None)]
        parts = [a for a in options if getattr(a, "part_kind", None) is not None]
        if parts:
            return _load_part(value, frozenset(parts))
        if len(options) == 1:
            return _load_typed(value, options[0])
    return value  # str, int, bool, Literal, JSON, Extra


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"a stored conversation holds {type(value).__name__} where a list belongs")
    return value


def _fields(cls: type[Any], value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"a stored conversation holds {type(value).__name__} where an object belongs")
    hints = _HINTS[cls]
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key == _KIND:
            continue
        if key not in hints:
            raise ValueError(f"a stored conversation holds an unknown field {key!r} of {cls.__name__}")
        kwargs[key] = _load_typed(item, hints[key])
    return kwargs


def _load_part(value: Any, allowed: frozenset[type[Any]]) -> Any:
    kind = value.get(_KIND) if isinstance(value, dict) else None
    cls = PART_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or cls not in allowed:
        raise ValueError(f"a stored conversation holds an unknown part kind {kind!r}")
    return cls(**_fields(cls, value))


def dump_messages(messages: Sequence[Message]) -> bytes:
    return orjson.dumps({"v": FORMAT, "messages": [_dump(m) for m in messages]})


def load_messages(data: bytes) -> tuple[Message, ...]:
    record = orjson.loads(data)
    if not isinstance(record, dict) or record.get("v") != FORMAT:
        raise ValueError("a stored conversation was written in another format")
    return tuple(Message(**_fields(Message, m)) for m in _list(record.get("messages")))
