"""What an answer cost in USD: the config's ``prices:`` first, then genai-prices' table, else None (never a guess).

genai-prices is looked up by provider and model. The provider is the backend dialect's (``DialectSpec.provider``,
the OpenTelemetry name); genai-prices names some providers differently, mapped here. A model's prices are looked
up once per process and kept: its rates per million tokens of input, output, cache read and cache write (each a
flat rate or tiers chosen by the request's whole input, as genai-prices applies them), so that pricing an answer
is a few multiplications (``calc_price`` itself takes 0.2-0.8 ms, too much per request). A model genai-prices
does not know is remembered as unpriced. The library (0.3 s to import) is loaded off the request path
(``Pricer.warm``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
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
        self._listed: dict[tuple[str, str], _Listed | _Calculated | None] = {}
        """genai-prices' rates by (provider, model); None: the model is not listed."""
        self._calc: Any = None

    def cost(self, provider: str | None, model: str, usage: Usage | None) -> float | None:
        """The answer's cost in USD; 0.0 when no tokens were used; None when the model's price is not known."""
        if usage is None or not (usage.prompt_tokens or usage.output_tokens):
            return 0.0  # nothing used costs nothing, whatever the price
        rates = self.overrides.get(model)  # read per call: a reload replaces ``overrides``
        if rates is not None:
            return by_rates(rates, usage)
        genai = GENAI_PROVIDERS.get(provider or "")
        if genai is None:
            return None
        key = (genai, model)
        listed = self._listed[key] if key in self._listed else self._lookup(genai, model)
        return None if listed is None else listed.cost(usage)

    def _lookup(self, genai: str, model: str) -> _Listed | _Calculated | None:
        calc = self._calc or self.warm()
        probe = _GenaiUsage(1, 1, 0, 0)
        try:
            price = calc(probe, model, provider_id=genai).model_price
        except LookupError:
            log.info("no price known for %s model %r: its answers cost null in the ledger", genai, model)
            price = None
        listed: _Listed | _Calculated | None = None if price is None else _Listed.of(price)
        if price is not None and listed is None:
            listed = _Calculated(calc, genai, model)  # rates finer than a picodollar: genai-prices computes
        self._listed[(genai, model)] = listed
        return listed

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


Rate = tuple[int, tuple[tuple[int, int], ...]]
"""Picodollars per token, and the tiers ``(start, price)`` that apply above ``start`` input tokens."""
_PICO = 10**12
_FREE: Rate = (0, ())


class Inexact(ValueError):
    """A rate that is not a whole number of picodollars per token."""


class _Listed:
    """A model's genai-prices rates, as integers: picodollars per token (a rate per million with up to six
    decimals is exact), flat or in tiers chosen by the request's whole input. The integer sum divided once gives
    the correctly rounded float of the exact cost: the number genai-prices' ``Decimal`` result converts to."""

    __slots__ = ("input", "output", "cache_read", "cache_write")

    def __init__(self, input_: Rate, output: Rate, cache_read: Rate | None, cache_write: Rate | None) -> None:
        self.input, self.output = input_, output
        self.cache_read = input_ if cache_read is None else cache_read  # unpriced cache tokens are input tokens
        self.cache_write = input_ if cache_write is None else cache_write

    @classmethod
    def of(cls, price: Any) -> _Listed | None:
        """The rates of a genai-prices ``ModelPrice``; None when one is finer than a picodollar per token."""
        try:
            rates = [_rate(getattr(price, name, None)) for name in _KINDS]
        except Inexact:
            return None
        return cls(rates[0] or _FREE, rates[1] or _FREE, rates[2], rates[3])

    def cost(self, usage: Usage) -> float | None:
        whole = usage.prompt_tokens
        total = (
            _at(self.input, whole) * usage.input_tokens
            + _at(self.output, whole) * usage.output_tokens
            + _at(self.cache_read, whole) * usage.cache_read_tokens
            + _at(self.cache_write, whole) * usage.cache_write_tokens
        )
        return total / _PICO  # int / int: the correctly rounded float of the exact quotient


_KINDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


def _pico(per_million: Any) -> int:
    scaled = Decimal(per_million) * 1_000_000
    if scaled != scaled.to_integral_value():
        raise Inexact(str(per_million))
    return int(scaled)


def _rate(value: Any) -> Rate | None:
    """A genai-prices rate (a ``Decimal`` or ``TieredPrices``) in picodollars per token; None when not listed."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return (_pico(value), ())
    return (_pico(value.base), tuple((tier.start, _pico(tier.price)) for tier in value.tiers))


def _at(rate: Rate, whole_input: int) -> int:
    """The rate that applies to a request of ``whole_input`` input tokens (the highest tier it passes)."""
    base, tiers = rate
    for start, price in reversed(tiers):
        if whole_input > start:
            return price
    return base


class _Calculated:
    """A listed model whose rates are not whole picodollars: each answer priced by genai-prices itself."""

    __slots__ = ("_calc", "_provider", "_model")

    def __init__(self, calc: Any, provider: str, model: str) -> None:
        self._calc, self._provider, self._model = calc, provider, model

    def cost(self, usage: Usage) -> float | None:
        counted = _GenaiUsage(
            usage.prompt_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
        )
        try:
            return float(self._calc(counted, self._model, provider_id=self._provider).total_price)
        except ValueError:
            return None


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
