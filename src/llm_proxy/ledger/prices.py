"""What an answer cost in USD: the config's ``prices:`` first, then genai-prices' table, else None (never a guess).

genai-prices is looked up by provider and model. The provider is the backend dialect's (``DialectSpec.provider``,
the OpenTelemetry name); genai-prices names some providers differently, mapped here. A model genai-prices does
not know is remembered as unpriced, so it is looked up once. The library (0.3 s to import) is loaded on first
use, off the request path (``Pricer.warm``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from llm_proxy.canonical import Usage
from llm_proxy.config import Rates

log = logging.getLogger("llm_proxy.ledger")

GENAI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "aws.bedrock": "aws"}
"""OpenTelemetry provider name (``DialectSpec.provider``) -> genai-prices provider id."""
_PER_MILLION = 1_000_000


class Pricer:
    """Prices of answers, by provider and backend model."""

    def __init__(self, overrides: Mapping[str, Rates]) -> None:
        self.overrides = dict(overrides)
        self._unknown: set[tuple[str | None, str]] = set()
        self._calc: Any = None

    def cost(self, provider: str | None, model: str, usage: Usage | None) -> float | None:
        """The answer's cost in USD; 0.0 when no tokens were used; None when the model's price is not known."""
        if usage is None or not (usage.prompt_tokens or usage.output_tokens):
            return 0.0  # nothing used costs nothing, whatever the price
        rates = self.overrides.get(model)  # read per call: a reload replaces ``overrides``
        if rates is not None:
            return by_rates(rates, usage)
        key = (provider, model)
        genai = GENAI_PROVIDERS.get(provider or "")
        if genai is None or key in self._unknown:
            return None
        calc = self._calc or self.warm()
        try:
            counted = _GenaiUsage(
                usage.prompt_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
            )
            result = calc(counted, model, provider_id=genai)
        except LookupError:
            self._unknown.add(key)
            log.info("no price known for %s model %r: its answers cost null in the ledger", genai, model)
            return None
        except ValueError as exc:  # usage the price list cannot split (e.g. more cached than input tokens)
            log.warning("cannot price %s model %r: %s", genai, model, exc)
            return None
        return float(result.total_price)

    def warm(self) -> Any:
        """Load genai-prices (call it in a thread at start, so that the first priced answer does not wait)."""
        if self._calc is None:
            from genai_prices import calc_price

            self._calc = calc_price
        return self._calc


class _GenaiUsage:
    """The usage genai-prices reads: ``input_tokens`` counts cached tokens too (OpenAI's convention)."""

    __slots__ = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")

    def __init__(self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read_tokens = cache_read
        self.cache_write_tokens = cache_write


def by_rates(rates: Rates, usage: Usage) -> float:
    """USD for ``usage`` at ``rates`` (per million tokens; cache kinds without a rate pay the input rate)."""
    cache_read = rates.input if rates.cache_read is None else rates.cache_read
    cache_write = rates.input if rates.cache_write is None else rates.cache_write
    total = (
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )
    return total / _PER_MILLION
