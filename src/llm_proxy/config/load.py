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
from pathlib import Path
from typing import Any

import yaml

from llm_proxy.config.clients import parse_client_keys
from llm_proxy.config.model import Config, Route, ServerConfig
from llm_proxy.config.prices import parse_prices
from llm_proxy.config.routes import parse_route
from llm_proxy.config.values import boolean, integer, number, reject_unknown, string
from llm_proxy.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    beside = Path(path).resolve().parent / DEFAULT_USAGE_DB
    return parse_config(raw, name, env, default_usage_store=f"sqlite:///{beside}")


DEFAULT_USAGE_DB = "usage.db"
"""The ledger's SQLite file beside the config file, when ``server.usage_store`` is not given."""


def parse_config(raw: Any, name: str, env: Mapping[str, str], *, default_usage_store: str | None = None) -> Config:
    """The config of a parsed document; ``default_usage_store`` is the ledger when the document names none (a
    config built in code, rather than read from a file, keeps no ledger unless it asks for one)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the top level must be a mapping with `server` and `models`")
    reject_unknown(raw, {"server", "models", "client_keys", "prices"}, f"{name}: top level")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{name}: `models` must be a non-empty list of model entries")
    # Every ${VAR} of the whole file is expanded first, so that one run names every missing variable.
    missing: dict[str, list[str]] = {}
    server_raw = _expand(raw.get("server") or {}, env, "server", missing)
    entries = [_expand(entry, env, _entry_label(i, entry), missing) for i, entry in enumerate(models)]
    keys_raw = _expand(raw.get("client_keys"), env, "client_keys", missing)
    if missing:
        raise ConfigError(_missing_message(name, missing))
    server = _parse_server(server_raw, name, default_usage_store)
    routes = tuple(parse_route(i, entry, name, _entry_label(i, entry)) for i, entry in enumerate(entries))
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        key = (route.frontend_base_url, route.frontend_model_name)
        if key in seen:
            raise ConfigError(
                f"{name}: {route.label}: field `frontend_model_name`: duplicate of {seen[key].label} "
                f"under the same frontend_base_url {route.frontend_base_url or '/'!r}"
            )
        seen[key] = route
    return Config(
        server=server,
        routes=routes,
        path=name,
        client_keys=parse_client_keys(keys_raw, name),
        prices=parse_prices(raw.get("prices"), name),
    )


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


def _parse_server(data: Any, name: str, default_usage_store: str | None = None) -> ServerConfig:
    where = f"{name}: server"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping")
    parsers: dict[str, Callable[[Any], Any]] = {
        "host": string,
        "port": lambda v: integer(int(v) if isinstance(v, str) and v.isdigit() else v, 0, 65535),
        "connect_timeout": number,
        "read_timeout": number,
        "shutdown_grace_period": lambda v: number(v, positive=False),
        "max_body_size": lambda v: integer(v, 1024, 2**31),
        "max_connections": lambda v: integer(v, 1, 100_000),
        "state_store": lambda v: _state_store(string(v)),
        "state_ttl": number,
        "workers": lambda v: integer(v, 1, 256),
        "interface": lambda v: _choice(string(v).lower(), ("asgi", "rsgi")),
        "log_level": lambda v: _choice(string(v).lower(), ("debug", "info", "warning", "error")),
        "access_log": boolean,
        "log_format": lambda v: _choice(string(v).lower(), ("text", "json")),
        "watch_config": boolean,
        "usage_store": lambda v: usage_store(string(v), Path(name).resolve().parent),
        "usage_queue": lambda v: integer(v, 1, 10_000_000),
        "admin_key": _admin_key,
    }
    reject_unknown(data, set(parsers), where)
    values: dict[str, Any] = {"usage_store": default_usage_store}
    for key, value in data.items():
        if value is None or value == "":
            continue  # "" is "not set", as in the models entries
        try:
            values[key] = parsers[key](value)
        except ValueError as exc:
            raise ConfigError(f"{where}: field `{key}`: {exc}") from None
    return ServerConfig(**values)


def usage_store(value: str, base: Path) -> str | None:
    """``none`` (no ledger), ``sqlite:///path`` (relative to the config file's folder) or a PostgreSQL URL."""
    if value.lower() in ("none", "off"):
        return None
    if value.startswith("sqlite:///"):
        file = Path(value.removeprefix("sqlite:///"))
        if not file.name:
            raise ValueError("sqlite:///PATH needs a file name")
        return f"sqlite:///{file if file.is_absolute() else (base / file)}"
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql://" + value.split("://", 1)[1]
    raise ValueError("must be `none`, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")


def _admin_key(value: Any) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("must be a string of at least 16 characters (value not shown)")
    return value


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
