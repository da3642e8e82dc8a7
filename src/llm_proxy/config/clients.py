"""``client_keys:``: the keys the proxy's own clients present, what each may use, and its limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from typing import Any

from llm_proxy.config.model import ClientKey
from llm_proxy.config.values import integer, number, reject_unknown
from llm_proxy.errors import ConfigError

_FIELDS = frozenset(
    {
        "name",
        "key",
        "key_sha256",
        "models",
        "prefixes",
        "requests_per_minute",
        "tokens_per_minute",
        "expires",
        "budget_usd_per_day",
        "budget_usd_per_month",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def parse_client_keys(value: Any, name: str) -> tuple[ClientKey, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{name}: `client_keys` must be a list of keys")
    keys = tuple(_parse_key(i, entry, name) for i, entry in enumerate(value))
    seen: set[str] = set()
    for key in keys:
        if key.name in seen:
            raise ConfigError(f"{name}: client_keys: the name {key.name!r} is used twice")
        seen.add(key.name)
    digests = [k.key_sha256 for k in keys]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{name}: client_keys: two entries hold the same key")
    return keys


Fail = Callable[[str, str], ConfigError]


def _key_and_digest(entry: dict[str, Any], fail: Fail) -> tuple[str | None, str]:
    """The key (when given) and its SHA-256 in hex."""
    secret = entry.get("key")
    digest = entry.get("key_sha256")
    if secret in ("", None) and digest in ("", None):
        raise fail("key", "give the key (`key: ${ENV_VAR}`) or its SHA-256 (`key_sha256`)")
    if secret in ("", None):
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise fail("key_sha256", "must be 64 hexadecimal characters")
        return None, digest.lower()
    if not isinstance(secret, str) or len(secret) < 16:
        raise fail("key", "must be a string of at least 16 characters (value not shown)")
    computed = hashlib.sha256(secret.encode()).hexdigest()
    if digest not in ("", None) and str(digest).lower() != computed:
        raise fail("key_sha256", "does not match `key`")
    return secret, computed


def _options(entry: dict[str, Any], fail: Fail) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for list_field in ("models", "prefixes"):
        items = entry.get(list_field)
        if items in (None, ""):
            continue
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise fail(list_field, "must be a list of non-empty strings")
        values[list_field] = tuple(p.rstrip("/") if list_field == "prefixes" else p for p in items)
    for limit in ("requests_per_minute", "tokens_per_minute"):
        if entry.get(limit) not in (None, ""):
            try:
                values[limit] = integer(entry[limit], 1, 10**12)
            except ValueError as exc:
                raise fail(limit, str(exc)) from None
    for budget in ("budget_usd_per_day", "budget_usd_per_month"):
        if entry.get(budget) not in (None, ""):
            try:
                values[budget] = number(_numeric(entry[budget]))
            except ValueError as exc:
                raise fail(budget, str(exc)) from None
    expires = entry.get("expires")
    if expires not in (None, ""):
        if isinstance(expires, dt.date):
            values["expires"] = expires
        else:
            try:
                values["expires"] = dt.date.fromisoformat(str(expires))
            except ValueError:
                raise fail("expires", "must be a date, YYYY-MM-DD") from None
    return values


def _parse_key(index: int, entry: Any, name: str) -> ClientKey:
    label = f"{name}: client_keys[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{label}: must be a mapping of fields")
    reject_unknown(entry, _FIELDS, label)

    def fail(field_name: str, problem: str) -> ConfigError:
        return ConfigError(f"{label}: field `{field_name}`: {problem}")

    key_name = entry.get("name")
    if not isinstance(key_name, str) or not _NAME.match(key_name):
        raise fail("name", "is required: letters, digits, '.', '_', '@' or '-' (it is shown in logs and metrics)")
    secret, digest = _key_and_digest(entry, fail)
    values: dict[str, Any] = {"name": key_name, "key_sha256": digest, "key": secret}
    values.update(_options(entry, fail))
    return ClientKey(**values)


def _numeric(value: Any) -> Any:
    """A number given through ``${VAR}`` arrives as a string: read it as one."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
