"""What an answer cost in USD: the config's ``prices:`` first, then genai-prices' table, else None (never a guess).

genai-prices is looked up by provider and model. The provider is the backend dialect's (``DialectSpec.provider``,
the OpenTelemetry name); genai-prices names some providers differently, mapped here (``GENAI_PROVIDERS``). The
serving process never imports genai-prices: a model's rates are looked up in a child process
(``prices_lookup``), several models at once, and kept for the life of the process: its rates per million tokens
of input, output, cache read and cache write (each a flat rate or tiers chosen by the request's whole input, as
genai-prices applies them). A model genai-prices does not list is remembered as unpriced.

``learn`` looks up the models not known yet (one child for all of them; askers of a model being looked up share
that lookup); ``cost`` prices an answer from what is known, with exact arithmetic: integer picodollars per
token when every rate is a whole number of them (a rate per million with up to six decimals), else exact
fractions; the exact total converted once to a float is what genai-prices' ``calc_price`` gives (its
``Decimal`` total as a float). A failed lookup (the child crashed or timed out) leaves its models unknown, to
be looked up again by the next asker (one warning until a lookup succeeds again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from llm_proxy.config import Rates
from llm_proxy.ledger.prices_lookup import KINDS, Listing, lookup

log = logging.getLogger("llm_proxy.ledger")

GENAI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "aws.bedrock": "aws"}
"""OpenTelemetry provider name (``DialectSpec.provider``) -> genai-prices provider id."""
_PER_MILLION = 1_000_000
_PICO = 10**12

Lookup = Callable[[Sequence[tuple[str, str]]], Awaitable[Sequence[Listing | None]]]
"""Rates of (genai-prices provider, model) pairs, in order (``prices_lookup.lookup``)."""
Key = tuple[str, str]


class Tokens(Protocol):
    """What an answer used: a ``canonical.Usage`` or a ``UsageRecord`` (``input_tokens`` without cached tokens)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_read_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...


class Pricer:
    """Prices of answers, by provider and backend model (see the module docstring)."""

    def __init__(self, overrides: Mapping[str, Rates], lookup: Lookup = lookup) -> None:
        self.overrides = dict(overrides)
        self._lookup = lookup
        self._listed: dict[Key, _Listed | None] = {}
        """genai-prices' rates by (provider, model); None: the model is not listed."""
        self._pending: dict[Key, asyncio.Task[None]] = {}
        """The lookup each model being looked up waits for."""
        self._failing = False
        self.lookups = 0
        """Lookups started (child processes run)."""

    def _key(self, provider: str | None, model: str) -> Key | None:
        """The genai-prices key of a model to look up; None when the config prices it or no provider is known."""
        if model in self.overrides:
            return None
        genai = GENAI_PROVIDERS.get(provider or "")
        return None if genai is None else (genai, model)

    def cost(self, provider: str | None, model: str, usage: Tokens | None) -> float | None:
        """The answer's cost in USD from what is known: 0.0 when no tokens were used; None when the model's price
        is not known (not listed, or not looked up: ``learn`` first)."""
        if usage is None or not used(usage):
            return 0.0  # nothing used costs nothing, whatever the price
        rates = self.overrides.get(model)  # read per call: a reload replaces ``overrides``
        if rates is not None:
            return by_rates(rates, usage)
        genai = GENAI_PROVIDERS.get(provider or "")
        if genai is None:
            return None
        listed = self._listed.get((genai, model))
        return None if listed is None else listed.cost(usage)

    async def priced(self, provider: str | None, model: str, usage: Tokens | None) -> float | None:
        """``cost``, after looking the model up if it is not known yet."""
        if usage is not None and used(usage):
            await self.learn(((provider, model),))
        return self.cost(provider, model, usage)

    def known(self, provider: str | None, model: str) -> bool:
        """Whether ``cost`` of this model needs no lookup."""
        key = self._key(provider, model)
        return key is None or key in self._listed

    async def learn(self, models: Iterable[tuple[str | None, str]]) -> None:
        """Look up the (provider, model) pairs not known yet, all in one child; wait for those being looked up."""
        keys = {key for provider, model in models if (key := self._key(provider, model)) is not None}
        missing = [key for key in keys if key not in self._listed and key not in self._pending]
        if missing:
            task = asyncio.get_running_loop().create_task(self._look_up(missing), name="ledger-prices-lookup")
            for key in missing:
                self._pending[key] = task
        waits = {self._pending[key] for key in keys if key in self._pending}
        if waits:
            await asyncio.shield(asyncio.gather(*waits))  # a cancelled asker leaves the lookup to the others

    async def _look_up(self, keys: list[Key]) -> None:
        self.lookups += 1
        try:
            listings = await self._lookup(keys)
            found = [None if listing is None else _Listed.of(listing) for listing in listings]
        except Exception as exc:  # the child failed: these models stay unknown, looked up again next time
            if not self._failing:
                log.warning("usage ledger: cannot look up prices (answers cost null meanwhile): %s", exc)
                self._failing = True
            return
        finally:
            for key in keys:
                self._pending.pop(key, None)
        if self._failing:
            log.info("usage ledger: prices looked up again")
            self._failing = False
        for key, listed in zip(keys, found, strict=True):
            if listed is None:
                log.info("no price known for %s model %r: its answers cost null in the ledger", *key)
            self._listed[key] = listed

    async def close(self) -> None:
        """Stop the lookups under way (their children are killed and reaped)."""
        tasks = set(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


Number = int | Fraction
Rate = tuple[Number, tuple[tuple[int, Number], ...]]
"""Picodollars per token (an ``int`` when whole, else a ``Fraction``), and the tiers ``(start, price)`` that
apply above ``start`` input tokens."""
_FREE: Rate = (0, ())


class _Listed:
    """A model's genai-prices rates in picodollars per token, flat or in tiers chosen by the request's whole
    input. The exact sum divided once by 10**12 gives the correctly rounded float of the exact cost: the number
    genai-prices' ``Decimal`` result converts to."""

    __slots__ = ("input", "output", "cache_read", "cache_write")

    def __init__(self, input_: Rate, output: Rate, cache_read: Rate | None, cache_write: Rate | None) -> None:
        self.input, self.output = input_, output
        self.cache_read = input_ if cache_read is None else cache_read  # unpriced cache tokens are input tokens
        self.cache_write = input_ if cache_write is None else cache_write

    @classmethod
    def of(cls, listing: Listing) -> _Listed:
        """The rates a lookup printed (``prices_lookup``)."""
        rates = [_rate(listing.get(kind)) for kind in KINDS]
        return cls(rates[0] or _FREE, rates[1] or _FREE, rates[2], rates[3])

    def cost(self, usage: Tokens) -> float:
        whole = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        total = (
            _at(self.input, whole) * usage.input_tokens
            + _at(self.output, whole) * usage.output_tokens
            + _at(self.cache_read, whole) * usage.cache_read_tokens
            + _at(self.cache_write, whole) * usage.cache_write_tokens
        )
        if isinstance(total, int):
            return total / _PICO  # int / int: the correctly rounded float of the exact quotient
        return float(total / _PICO)  # a Fraction: exact, then rounded once


def _pico(per_million: str) -> Number:
    """Picodollars per token of a rate per million tokens written as a decimal string: exact."""
    scaled = Fraction(Decimal(per_million)) * _PER_MILLION
    return scaled.numerator if scaled.denominator == 1 else scaled


def _rate(value: Any) -> Rate | None:
    """A listed rate (a string, or a base with tiers) in picodollars per token; None when not listed."""
    if value is None:
        return None
    if isinstance(value, str):
        return (_pico(value), ())
    return (_pico(value["base"]), tuple((int(start), _pico(price)) for start, price in value["tiers"]))


def _at(rate: Rate, whole_input: int) -> Number:
    """The rate that applies to a request of ``whole_input`` input tokens (the highest tier it passes)."""
    base, tiers = rate
    for start, price in reversed(tiers):
        if whole_input > start:
            return price
    return base


def used(usage: Tokens) -> bool:
    """Whether an answer used any token."""
    return bool(usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens)


def by_rates(rates: Rates, usage: Tokens) -> float:
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
