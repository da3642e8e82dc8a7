"""One ``models:`` entry into a ``Route``: the frontend side, the pool of backends, the fallbacks.

The seed's flat form (``backend_base_url``, ``backend_api_key``, ... on the entry itself) is a pool of
one. ``backends:`` gives a pool instead (weighted), ``fallbacks:`` an ordered list tried once the pool has
failed; every block accepts every ``backend_*`` field, the AWS fields, ``weight`` and ``name``. A backend
whose dialect differs from the client's needs a translating route (``frontend_dialect`` set).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from llm_proxy.config.model import MOCK_SCHEME, Backend, Cooldown, Route, Timeouts
from llm_proxy.config.values import boolean, integer, number, reject_unknown
from llm_proxy.dialects import names as dialect_names
from llm_proxy.errors import ConfigError

_BACKEND_STRINGS = (
    "backend_model_name",
    "backend_base_url",
    "backend_api_key",
    "backend_auth_header",
    "backend_auth_schema",
    "backend_dialect",
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
)
_FRONT_STRINGS = ("frontend_model_name", "frontend_base_url", "frontend_dialect", "system_append")
_BACKEND_KEYS = frozenset(_BACKEND_STRINGS) | {"name", "weight", "default_max_tokens"}
_ROUTE_FIELDS = (
    frozenset(_FRONT_STRINGS)
    | frozenset(_BACKEND_STRINGS)
    | {"system_replacements", "inject_progress", "default_max_tokens", "backends", "fallbacks", "retries"}
    | {"cooldown", "timeouts", "require_client_key"}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_GLOB = re.compile(r"[*?\[]")

_SECRET_FIELDS = frozenset(
    {
        "backend_api_key",
        "backend_auth_header",
        "backend_auth_schema",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)
"""Fields whose values are never printed, not even in a config error (a user may paste a key into any of them)."""
_KEEP_EMPTY = frozenset({"backend_auth_schema"})
"""String fields where ``""`` is a value (no schema: the raw key); in every other optional field ``""`` means unset."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Fail = Callable[[str, str], ConfigError]


def parse_route(index: int, data: Any, name: str, entry_label: str) -> Route:
    label = f"{name}: {entry_label}"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: must be a mapping of fields")
    reject_unknown(data, _ROUTE_FIELDS, label)

    def fail(field_name: str, problem: str) -> ConfigError:
        return ConfigError(f"{label}: field `{field_name}`: {problem}")

    values = _strings(data, _FRONT_STRINGS, fail)
    for required in ("frontend_model_name", "frontend_base_url"):
        if not values.get(required):
            raise fail(required, "is required")
    prefix = values["frontend_base_url"]
    if not prefix.startswith("/"):
        raise fail("frontend_base_url", f"must start with `/` (got {prefix!r})")
    if "?" in prefix or "#" in prefix or "//" in prefix or any(seg in (".", "..") for seg in prefix.split("/")):
        raise fail("frontend_base_url", f"must be a plain path (got {prefix!r})")
    values["frontend_base_url"] = prefix.rstrip("/")
    front = values.get("frontend_dialect")
    if front is not None and front not in dialect_names():
        raise fail("frontend_dialect", f"unknown dialect {front!r} (known: {', '.join(dialect_names())})")
    values.update(_route_options(data, fail))
    model = values["frontend_model_name"]
    max_tokens = values.get("default_max_tokens", 8192)

    flat = [key for key in _BACKEND_STRINGS if data.get(key) not in (None, "")]
    if data.get("backends") not in (None, ""):
        if flat:
            raise fail(flat[0], "set the backend fields inside `backends:` entries, not beside them")
        pool = _blocks(data["backends"], "backends", label, model, max_tokens, lambda i: str(i))
    else:
        pool = (_backend(data, "0", fail, model, max_tokens, flat_form=True),)
    fallbacks = _blocks(data.get("fallbacks"), "fallbacks", label, model, max_tokens, lambda i: f"fallback-{i}")
    _check_dialects(front, pool, fallbacks, fail)
    first = pool[0]
    for key in ("backend_model_name", "backend_base_url", "backend_dialect", "backend_api_key"):
        values[key] = getattr(first, key)
    for key in ("backend_auth_header", "backend_auth_schema", "aws_region", "aws_access_key_id"):
        values[key] = getattr(first, key)
    for key in ("aws_secret_access_key", "aws_session_token", "aws_profile", "default_max_tokens"):
        values[key] = getattr(first, key)
    values.update(backend_name=first.name, fallbacks=fallbacks, pattern=bool(_GLOB.search(model)))
    if data.get("backends") not in (None, ""):
        values["backends"] = pool  # the flat form keeps its backend in the route's own fields (Route.pool)
    return Route(index=index, **values)


def _strings(data: dict[str, Any], keys: tuple[str, ...], fail: Fail) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in keys:
        value = data.get(key)
        if value is None or (value == "" and key not in _KEEP_EMPTY):
            continue  # the seed's template writes every optional field, empty: "" is "not set"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fail(key, "must be a string")
        text = str(value)
        if key in _SECRET_FIELDS and _CONTROL.search(text):
            raise fail(key, "must not contain line breaks or other control characters (value not shown)")
        values[key] = text
    return values


def _blocks(
    value: Any, key: str, label: str, model: str, max_tokens: int, default_name: Callable[[int], str]
) -> tuple[Backend, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list) or (key == "backends" and not value):
        raise ConfigError(f"{label}: field `{key}`: must be a non-empty list of backend blocks")
    backends: list[Backend] = []
    for i, block in enumerate(value):
        where = f"{label}: {key}[{i}]"
        if not isinstance(block, dict):
            raise ConfigError(f"{where}: must be a mapping of backend fields")
        reject_unknown(block, _BACKEND_KEYS, where)

        def fail(field_name: str, problem: str, where: str = where) -> ConfigError:
            return ConfigError(f"{where}: field `{field_name}`: {problem}")

        backends.append(_backend(block, default_name(i), fail, model, max_tokens, flat_form=False))
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ConfigError(f"{label}: field `{key}`: backend names must be unique (got {', '.join(names)})")
    return tuple(backends)


def _backend(data: dict[str, Any], name: str, fail: Fail, model: str, max_tokens: int, *, flat_form: bool) -> Backend:
    values = _strings(data, _BACKEND_STRINGS, fail)
    if not values.get("backend_base_url"):
        raise fail("backend_base_url", "is required")
    values.setdefault("backend_model_name", "{model}" if _GLOB.search(model) else model)
    url = values["backend_base_url"]
    is_http = url.startswith(("http://", "https://")) and bool(url.split("://", 1)[1].strip("/"))
    if not is_http and url != MOCK_SCHEME:
        shown = "" if "@" in url else f" (got {url!r})"  # user:password@host is a credential
        raise fail("backend_base_url", f"must be an http(s):// URL or exactly {MOCK_SCHEME}{shown}")
    values["backend_base_url"] = url if url == MOCK_SCHEME else url.rstrip("/")
    if not _HEADER_NAME.match(values.get("backend_auth_header", "Authorization")):
        raise fail(
            "backend_auth_header",
            "not a valid HTTP header name (value not shown; write only the name, e.g. x-api-key, "
            "and put the key in backend_api_key)",
        )
    back = values.get("backend_dialect")
    if back is not None and back not in dialect_names():
        raise fail("backend_dialect", f"unknown dialect {back!r} (known: {', '.join(dialect_names())})")
    if not flat_form:
        if data.get("name") not in (None, ""):
            name = str(data["name"])
        if data.get("weight") not in (None, ""):
            try:
                values["weight"] = number(data["weight"])
            except ValueError as exc:
                raise fail("weight", str(exc)) from None
        if data.get("default_max_tokens") not in (None, ""):
            try:
                max_tokens = integer(data["default_max_tokens"], 1, 10_000_000)
            except ValueError as exc:
                raise fail("default_max_tokens", str(exc)) from None
    return Backend(name=name, default_max_tokens=max_tokens, **values)


def _check_dialects(front: str | None, pool: tuple[Backend, ...], fallbacks: tuple[Backend, ...], fail: Fail) -> None:
    for backend in pool:
        if (front is None) != (backend.backend_dialect is None):
            missing = "backend_dialect" if backend.backend_dialect is None else "frontend_dialect"
            raise fail(
                missing, "set both frontend_dialect and backend_dialect (translation mode) or neither (proxy mode)"
            )
    for i, backend in enumerate(fallbacks):
        if front is None and backend.backend_dialect is not None:
            raise fail(
                "frontend_dialect",
                f"fallbacks[{i}] speaks {backend.backend_dialect}: a fallback in another dialect needs "
                "frontend_dialect set (translation mode)",
            )
        if front is not None and backend.backend_dialect is None:
            raise fail("fallbacks", f"fallbacks[{i}] needs backend_dialect (the route translates)")


def _route_options(data: dict[str, Any], fail: Fail) -> dict[str, Any]:
    """The non-string fields of a model entry."""
    values: dict[str, Any] = {}
    if data.get("system_replacements") not in (None, ""):
        values["system_replacements"] = _replacements(data["system_replacements"], fail)
    parsers: dict[str, Callable[[Any], Any]] = {
        "inject_progress": boolean,
        "require_client_key": boolean,
        "default_max_tokens": lambda v: integer(v, 1, 10_000_000),
        "retries": lambda v: integer(v, 0, 10),
        "cooldown": _cooldown,
        "timeouts": _timeouts,
    }
    for key, parse in parsers.items():
        if data.get(key) not in (None, ""):
            try:
                values[key] = parse(data[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
    return values


def _cooldown(value: Any) -> Cooldown:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping with failures, window and seconds")
    unknown = set(value) - {"failures", "window", "seconds"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (known: failures, window, seconds)")
    given: dict[str, Any] = {}
    if value.get("failures") is not None:
        given["failures"] = integer(value["failures"], 1, 1000)
    if value.get("window") is not None:
        given["window"] = number(value["window"])
    if value.get("seconds") is not None:
        given["seconds"] = number(value["seconds"], positive=False)
    return Cooldown(**given)


def _timeouts(value: Any) -> Timeouts:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping with connect, first_byte, idle and total (seconds; 0 = none)")
    unknown = set(value) - {"connect", "first_byte", "idle", "total"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (known: connect, first_byte, idle, total)")
    return Timeouts(**{k: number(v, positive=False) for k, v in value.items() if v is not None})


def _replacements(value: Any, fail: Fail) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise fail("system_replacements", "must be a mapping of old text to new text")
    pairs: list[tuple[str, str]] = []
    for old, new in value.items():
        if not isinstance(old, str) or not old:
            raise fail("system_replacements", f"keys must be non-empty strings (got {old!r})")
        if new is None:
            new = ""
        if not isinstance(new, str | int | float) or isinstance(new, bool):
            raise fail("system_replacements", f"the replacement for {old!r} must be a string")
        pairs.append((old, str(new)))
    return tuple(pairs)
