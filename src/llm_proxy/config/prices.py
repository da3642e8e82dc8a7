"""``prices:``: a model's rates in USD per million tokens, keyed by backend model name.

They come before genai-prices' table (an override) and price models it does not know::

    prices:
      my-model: {input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75}
"""

from __future__ import annotations

from typing import Any

from llm_proxy.config.model import Rates
from llm_proxy.config.values import number, reject_unknown
from llm_proxy.errors import ConfigError

_KINDS = frozenset({"input", "output", "cache_read", "cache_write"})


def parse_prices(value: Any, name: str) -> dict[str, Rates]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: `prices` must map backend model names to rates")
    return {str(model): _rates(model, rates, name) for model, rates in value.items()}


def _rates(model: Any, rates: Any, name: str) -> Rates:
    where = f"{name}: prices: {model}"
    if not isinstance(rates, dict):
        raise ConfigError(f"{where}: must be a mapping of input, output, cache_read, cache_write (USD per million)")
    reject_unknown(rates, _KINDS, where)
    values: dict[str, float] = {}
    for kind, given in rates.items():
        try:
            values[kind] = number(float(given) if isinstance(given, str) else given, positive=False)
        except ValueError as exc:
            raise ConfigError(f"{where}: field `{kind}`: {exc}") from None
        if values[kind] < 0:
            raise ConfigError(f"{where}: field `{kind}`: must not be negative")
    for kind in ("input", "output"):
        if kind not in values:
            raise ConfigError(f"{where}: field `{kind}` is required (USD per million tokens)")
    return Rates(**values)
