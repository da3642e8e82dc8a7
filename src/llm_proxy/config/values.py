"""Readers for config values: each returns the typed value or raises ``ValueError`` saying what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from llm_proxy.errors import ConfigError


def reject_unknown(data: Mapping[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = closest(str(key), allowed)
            suggestion = f" (did you mean `{hint}`?)" if hint else ""
            raise ConfigError(f"{where}: unknown field `{key}`{suggestion}")


def closest(word: str, options: set[str] | frozenset[str]) -> str | None:
    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None


def number(value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if positive and value <= 0:
        raise ValueError("must be greater than 0")
    return float(value)


def integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # from ${VAR} expansion
    raise ValueError("must be true or false")
