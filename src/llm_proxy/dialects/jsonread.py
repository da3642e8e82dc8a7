"""Reading wire JSON for every codec: typed readers with a field path, and what has no canonical home.

A codec reads a client body or an upstream answer with a ``Reader`` (``read.string(value, "messages[0].role")``).
A malformed value raises ``Invalid(message, path)``; the codec's entry points turn it into a ``RequestError``
(``Invalid.request_error``: a client's body, 400 naming the field) or an ``UpstreamError`` (``bad_upstream``:
an upstream's answer, 502). The dialects word the same failure differently and clients see those words, so
the wording is the reader's: Chat quotes the path in backticks, Claude calls an array a list.

The lenient readers (``string_or``, ``integer_or``, ...) serve streams and usage, where a missing or odd value
means "nothing" rather than an error. ``rest`` keeps the wire fields a decoder did not map (for exact round
trips) and ``merge_extra`` puts them back; ``header`` is the one case-insensitive header lookup, and
``http_error`` the one reading of an upstream's HTTP error once a codec has found its type and message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import orjson

from llm_proxy.canonical import JSON, ErrorKind, Extra, ProxyError
from llm_proxy.errors import RequestError, UpstreamError


class Invalid(Exception):
    """A malformed wire value: ``message`` says what is wrong with the field at ``path``."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def request_error(self) -> RequestError:
        """The client's 400, naming the field."""
        return RequestError(self.message, param=self.path)


def upstream_fault(message: str) -> ProxyError:
    """The error (502) of an upstream answer or stream the proxy cannot read."""
    return ProxyError(status=502, kind=ErrorKind.API_ERROR, message=message)


def bad_upstream(message: str) -> UpstreamError:
    """``upstream_fault`` raised from decoding a whole answer."""
    return UpstreamError(upstream_fault(message))


def http_error(
    status: int,
    error_type: str | None,
    message: str,
    headers: Mapping[str, str],
    classify: Callable[[str | None, str, int], ErrorKind],
) -> ProxyError:
    """An upstream's HTTP error from what its body said (an empty message says the status instead), with the
    kind ``classify(error_type, message, status)`` gives and the upstream's ``Retry-After``."""
    if not message.strip():
        message = f"the upstream answered HTTP {status}"
    return ProxyError(
        status=status,
        kind=classify(error_type, message, status),
        message=message,
        retry_after=header(headers, "retry-after"),
    )


@dataclass(frozen=True, slots=True)
class Reader:
    """Typed readers of wire JSON; each takes the value and its path, and raises ``Invalid`` in this wording."""

    quote_paths: bool = False
    """Show the path in backticks (Chat's wording)."""
    array_word: str = "an array"
    """What a JSON array is called in messages (Claude's wording: "a list")."""

    def fail(self, path: str, problem: str) -> Invalid:
        """``Invalid`` for ``path`` with ``problem`` ("must be ..."), in this reader's wording."""
        shown = f"`{path}`" if self.quote_paths else path
        return Invalid(f"{shown} {problem}", path)

    def obj(self, value: JSON, path: str) -> dict[str, JSON]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be an object")
        return value

    def array(self, value: JSON, path: str) -> list[JSON]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be {self.array_word}")
        return value

    def string(self, value: JSON, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, "must be a string")
        return value

    def opt_string(self, value: JSON, path: str) -> str | None:
        return None if value is None else self.string(value, path)

    def boolean(self, value: JSON, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be a boolean")
        return value

    def opt_boolean(self, value: JSON, path: str) -> bool | None:
        return None if value is None else self.boolean(value, path)

    def integer(self, value: JSON, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, "must be an integer")
        return value

    def opt_integer(self, value: JSON, path: str) -> int | None:
        return None if value is None else self.integer(value, path)

    def number(self, value: JSON, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, "must be a number")
        return value

    def opt_number(self, value: JSON, path: str) -> float | None:
        return None if value is None else self.number(value, path)

    def dumps(self, value: JSON, path: str) -> str:
        """``value`` as JSON text (tool arguments); a value orjson cannot write (too deep) is invalid."""
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError as exc:
            raise Invalid(f"{path} cannot be represented as JSON: {exc}", path) from None


# ---------------------------------------------------------------------------------------------
# Lenient readers: a missing or odd value is the default
# ---------------------------------------------------------------------------------------------


def string_or(value: JSON, default: str = "") -> str:
    return value if isinstance(value, str) else default


def integer_or(value: JSON, default: int = 0) -> int:
    """An integer (never a bool), else ``default``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def obj_or_empty(value: JSON) -> dict[str, JSON]:
    return value if isinstance(value, dict) else {}


def list_or_empty(value: JSON) -> list[JSON]:
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------------------------------------
# Extra: the wire fields without a canonical home, kept for the same-dialect round trip
# ---------------------------------------------------------------------------------------------


def rest(obj: Mapping[str, JSON], known: Iterable[str], *, drop_null: Collection[str] = ()) -> Extra:
    """The fields of ``obj`` a decoder did not map: unknown ones, and known ones sent as null.

    The decoders read null as absent, so a known null is kept to be written back; ``drop_null`` names
    known fields whose null the encoder never writes back (it always writes its own value there).
    """
    known = frozenset(known)
    return {k: v for k, v in obj.items() if k not in known or (v is None and k not in drop_null)}


def merge_extra(target: dict[str, JSON], extra: Mapping[str, JSON], *, nested: bool = False) -> dict[str, JSON]:
    """Add kept fields to an encoded object, which wins where both have a value; with ``nested``, objects
    on both sides merge (recursively, never mutating a dict shared with the canonical object)."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif nested and isinstance(target[key], dict) and isinstance(value, dict):
            merged = dict(target[key])
            target[key] = merge_extra(merged, value, nested=True)
    return target


def put(target: dict[str, JSON], key: str, value: JSON) -> None:
    """Set ``key`` unless ``value`` is None (absent fields stay absent)."""
    if value is not None:
        target[key] = value


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case), whatever case the sender used."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
