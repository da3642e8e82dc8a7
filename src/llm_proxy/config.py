"""The config file: loaded once at start into frozen, typed objects, or rejected with one clear message.

Every message names the file, the entry (index and model name) and the field, so a user can fix a
typo without reading a traceback. ``${VAR}`` and ``${VAR:-default}`` inside any string are replaced
from the environment before validation; unset variables without a default are an error, all of them
named in one message (a user learns every name in one run, not one per run).

An optional field given as an empty string means "not set", as if the line were absent: the config
template users bring from the project this one grew from writes every optional field that way
(``frontend_dialect: ""``, ``backend_api_key: ""``, ``system_append: ""``, ...). The one exception is
``backend_auth_schema``, where ``""`` has a meaning of its own: send the key without a prefix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llm_proxy.dialects import names as dialect_names
from llm_proxy.errors import ConfigError

MOCK_SCHEME = "mock://"
"""``backend_base_url`` value that makes the proxy answer in-process with the embedded mock upstream."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    """Loopback unless the config or ``--host`` says otherwise: a proxy holding keys is not exposed by accident."""
    port: int = 8080
    connect_timeout: float = 10.0
    """Seconds to open a connection to an upstream."""
    read_timeout: float = 600.0
    """Seconds an upstream may stay silent (before its first byte, or between two chunks)."""
    shutdown_grace_period: float = 30.0
    """On SIGTERM, seconds in-flight requests get to finish before the process exits."""
    max_body_size: int = 32 * 1024 * 1024
    max_connections: int = 1000
    """Upper bound on open upstream connections (long streams hold one each)."""
    state_store: str | None = None
    """None/``memory``: in-process; ``redis://host:port/db``: shared by replicas."""
    state_ttl: float = 86400.0
    workers: int = 1
    """Server processes sharing the port (uvicorn workers). With more than one, use a Redis state store."""
    log_level: str = "info"
    access_log: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One ``models:`` entry."""

    index: int
    frontend_model_name: str
    frontend_base_url: str
    """Normalized: starts with ``/``, no trailing ``/`` (the root prefix is ``""``)."""
    backend_model_name: str
    backend_base_url: str
    """Normalized: no trailing ``/``."""
    frontend_dialect: str | None = None
    backend_dialect: str | None = None
    backend_api_key: str = field(default="", repr=False)
    backend_auth_header: str = "Authorization"
    backend_auth_schema: str = "Bearer"
    system_replacements: tuple[tuple[str, str], ...] = ()
    system_append: str | None = None
    inject_progress: bool = False
    default_max_tokens: int = 8192
    aws_region: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None

    @property
    def translating(self) -> bool:
        return self.frontend_dialect is not None

    @property
    def is_mock(self) -> bool:
        return self.backend_base_url.startswith(MOCK_SCHEME)

    @property
    def label(self) -> str:
        return f"models[{self.index}] ({self.frontend_model_name})"

    def auth_value(self, key: str) -> str:
        """The value of ``backend_auth_header`` for ``key``."""
        return f"{self.backend_auth_schema} {key}" if self.backend_auth_schema else key

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials this route holds (never to be logged or sent back to a client)."""
        values = (self.backend_api_key, self.aws_secret_access_key, self.aws_session_token)
        return tuple(v for v in values if v)

    @property
    def holds_credentials(self) -> bool:
        """Whether requests on this route spend a credential of the proxy's own."""
        return bool(self.backend_api_key or self.aws_access_key_id or self.aws_profile)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig
    routes: tuple[Route, ...]
    path: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential in the config, for redaction."""
        return tuple(secret for route in self.routes for secret in route.secrets)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def exposure_warning(config: Config, host: str) -> str | None:
    """A warning when the proxy listens beyond loopback while routes spend keys of its own, else None."""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return None
    spending = [r.label for r in config.routes if r.holds_credentials]
    if not spending:
        return None
    return (
        f"listening on {host}, beyond loopback: anyone who can reach this port can spend the keys of "
        f"{len(spending)} route(s) ({', '.join(spending[:3])}{', ...' if len(spending) > 3 else ''}); "
        "bind to 127.0.0.1 or restrict access to the port"
    )


def mask_key(key: str) -> str:
    """``sk-abc...3f9a`` style: enough to recognise a key, never enough to use it."""
    if not key:
        return "(none)"
    if len(key) <= 8:
        return "…"
    return f"{key[:3]}…{key[-4:]}"


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file. Raises ``ConfigError`` with a one-line message."""
    env = os.environ if environ is None else environ
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config file: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {_yaml_problem(exc)}") from exc
    return parse_config(raw, name, env)


def parse_config(raw: Any, name: str, env: Mapping[str, str]) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the top level must be a mapping with `server` and `models`")
    _reject_unknown(raw, {"server", "models"}, f"{name}: top level")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{name}: `models` must be a non-empty list of model entries")
    # Every ${VAR} of the whole file is expanded first, so that one run names every missing variable.
    missing: dict[str, list[str]] = {}
    server_raw = _expand(raw.get("server") or {}, env, "server", missing)
    entries = [_expand(entry, env, _entry_label(i, entry), missing) for i, entry in enumerate(models)]
    if missing:
        raise ConfigError(_missing_message(name, missing))
    server = _parse_server(server_raw, name)
    routes = tuple(_parse_route(i, entry, name) for i, entry in enumerate(entries))
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        key = (route.frontend_base_url, route.frontend_model_name)
        if key in seen:
            raise ConfigError(
                f"{name}: {route.label}: field `frontend_model_name`: duplicate of {seen[key].label} "
                f"under the same frontend_base_url {route.frontend_base_url or '/'!r}"
            )
        seen[key] = route
    return Config(server=server, routes=routes, path=name)


def _entry_label(index: int, entry: Any) -> str:
    model = entry.get("frontend_model_name") if isinstance(entry, dict) else None
    return f"models[{index}]" + (f" ({model})" if model and isinstance(model, str) else "")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)


def _missing_message(name: str, missing: dict[str, list[str]]) -> str:
    """One line naming every unset variable and where each is used."""
    if len(missing) == 1:
        ((var, places),) = missing.items()
        if len(places) == 1:
            return (
                f"{name}: {places[0]}: environment variable {var} is not set (write ${{{var}:-default}} for a default)"
            )
    listed = "; ".join(f"{var} (in {', '.join(places)})" for var, places in missing.items())
    count = f"{len(missing)} environment variables are" if len(missing) > 1 else "an environment variable is"
    return f"{name}: {count} not set: {listed} (export them, or write ${{VAR:-default}} for a default)"


def _expand(value: Any, env: Mapping[str, str], where: str, missing: dict[str, list[str]]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``value``; record unset variables in ``missing``."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in env:
                return env[var]
            if default is not None:
                return default
            places = missing.setdefault(var, [])
            if where not in places:
                places.append(where)
            return ""

        return _ENV_REF.sub(sub, value) if "${" in value else value
    if isinstance(value, dict):
        inside = ": field" in where
        return {k: _expand(v, env, where if inside else f"{where}: field `{k}`", missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where, missing) for v in value]
    return value


def _reject_unknown(data: Mapping[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = _closest(str(key), allowed)
            suggestion = f" (did you mean `{hint}`?)" if hint else ""
            raise ConfigError(f"{where}: unknown field `{key}`{suggestion}")


def _closest(word: str, options: set[str] | frozenset[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _number(value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if positive and value <= 0:
        raise ValueError("must be greater than 0")
    return float(value)


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # from ${VAR} expansion
    raise ValueError("must be true or false")


def _parse_server(data: Any, name: str) -> ServerConfig:
    where = f"{name}: server"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping")
    parsers: dict[str, Callable[[Any], Any]] = {
        "host": _string,
        "port": lambda v: _integer(int(v) if isinstance(v, str) and v.isdigit() else v, 0, 65535),
        "connect_timeout": _number,
        "read_timeout": _number,
        "shutdown_grace_period": lambda v: _number(v, positive=False),
        "max_body_size": lambda v: _integer(v, 1024, 2**31),
        "max_connections": lambda v: _integer(v, 1, 100_000),
        "state_store": lambda v: _state_store(_string(v)),
        "state_ttl": _number,
        "workers": lambda v: _integer(v, 1, 256),
        "log_level": lambda v: _choice(_string(v).lower(), ("debug", "info", "warning", "error")),
        "access_log": _boolean,
    }
    _reject_unknown(data, set(parsers), where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or value == "":
            continue  # "" is "not set", as in the models entries
        try:
            values[key] = parsers[key](value)
        except ValueError as exc:
            raise ConfigError(f"{where}: field `{key}`: {exc}") from None
    return ServerConfig(**values)


def _state_store(value: str) -> str | None:
    if value in ("", "memory"):
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be `memory` or a redis:// URL")
    return value


def _choice(value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"must be one of {', '.join(options)}")
    return value


_ROUTE_STRINGS = (
    "frontend_model_name",
    "frontend_base_url",
    "frontend_dialect",
    "backend_model_name",
    "backend_base_url",
    "backend_api_key",
    "backend_auth_header",
    "backend_auth_schema",
    "backend_dialect",
    "system_append",
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
)
_ROUTE_FIELDS = frozenset(_ROUTE_STRINGS) | {"system_replacements", "inject_progress", "default_max_tokens"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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


def _parse_route(index: int, data: Any, name: str) -> Route:
    label = f"{name}: {_entry_label(index, data)}"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: must be a mapping of fields")
    _reject_unknown(data, _ROUTE_FIELDS, label)

    def fail(field_name: str, problem: str) -> ConfigError:
        return ConfigError(f"{label}: field `{field_name}`: {problem}")

    values: dict[str, Any] = {}
    for key in _ROUTE_STRINGS:
        value = data.get(key)
        if value is None or (value == "" and key not in _KEEP_EMPTY):
            continue  # the seed's template writes every optional field, empty: "" is "not set"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fail(key, "must be a string")
        text = str(value)
        if key in _SECRET_FIELDS and _CONTROL.search(text):
            raise fail(key, "must not contain line breaks or other control characters (value not shown)")
        values[key] = text
    for required in ("frontend_model_name", "frontend_base_url", "backend_base_url"):
        if not values.get(required):
            raise fail(required, "is required")
    values.setdefault("backend_model_name", values["frontend_model_name"])

    prefix = values["frontend_base_url"]
    if not prefix.startswith("/"):
        raise fail("frontend_base_url", f"must start with `/` (got {prefix!r})")
    if "?" in prefix or "#" in prefix or "//" in prefix or any(seg in (".", "..") for seg in prefix.split("/")):
        raise fail("frontend_base_url", f"must be a plain path (got {prefix!r})")
    values["frontend_base_url"] = prefix.rstrip("/")

    backend = values["backend_base_url"]
    is_http = backend.startswith(("http://", "https://")) and bool(backend.split("://", 1)[1].strip("/"))
    if not is_http and backend != MOCK_SCHEME:
        shown = "" if "@" in backend else f" (got {backend!r})"  # user:password@host is a credential
        raise fail("backend_base_url", f"must be an http(s):// URL or exactly {MOCK_SCHEME}{shown}")
    values["backend_base_url"] = backend if backend == MOCK_SCHEME else backend.rstrip("/")

    _check_dialects(values, fail)
    if not _HEADER_NAME.match(values.get("backend_auth_header", "Authorization")):
        raise fail(
            "backend_auth_header",
            "not a valid HTTP header name (value not shown; write only the name, e.g. x-api-key, "
            "and put the key in backend_api_key)",
        )
    values.update(_route_options(data, fail))
    return Route(index=index, **values)


def _route_options(data: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> dict[str, Any]:
    """The non-string fields of a model entry."""
    values: dict[str, Any] = {}
    if data.get("system_replacements") not in (None, ""):
        values["system_replacements"] = _replacements(data["system_replacements"], fail)
    parsers: dict[str, Callable[[Any], Any]] = {
        "inject_progress": _boolean,
        "default_max_tokens": lambda v: _integer(v, 1, 10_000_000),
    }
    for key, parse in parsers.items():
        if data.get(key) not in (None, ""):
            try:
                values[key] = parse(data[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
    return values


def _check_dialects(values: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> None:
    front, back = values.get("frontend_dialect"), values.get("backend_dialect")
    for key, dialect in (("frontend_dialect", front), ("backend_dialect", back)):
        if dialect is not None and dialect not in dialect_names():
            raise fail(key, f"unknown dialect {dialect!r} (known: {', '.join(dialect_names())})")
    if (front is None) != (back is None):
        missing = "backend_dialect" if back is None else "frontend_dialect"
        raise fail(missing, "set both frontend_dialect and backend_dialect (translation mode) or neither (proxy mode)")


def _replacements(value: Any, fail: Callable[[str, str], ConfigError]) -> tuple[tuple[str, str], ...]:
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
