"""``python -m llm_proxy.ledger.prices_lookup``: genai-prices' rates of some models, looked up in a child process.

genai-prices holds its whole table as Python objects (about 20 MB once imported), so the serving process never
imports it: ``lookup`` runs this module as a child with the (provider, model) pairs as a JSON list on stdin, and
the child prints, for each pair in order, its rates or null (a model genai-prices does not list)::

    [{"input_mtok": {"base": "3", "tiers": [[200000, "6"]]}, "output_mtok": "15", "cache_read_mtok": "0.3"}, null]

Rates are USD per million tokens of input, output, cache read and cache write (a kind genai-prices does not
price is left out), each a flat rate or a base with tiers ``[start, rate]`` chosen by the request's whole
input; genai-prices' ``Decimal``s are written as strings, so that nothing is rounded on the way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson

from llm_proxy.ledger.child import run_child

KINDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
"""The rates a lookup answers, per million tokens (genai-prices' names)."""
TIMEOUT = 30.0
"""Seconds a lookup may take (importing genai-prices is most of it)."""

Listing = dict[str, Any]
"""One model's rates as the child prints them (see the module docstring)."""


async def lookup(pairs: Sequence[tuple[str, str]], *, timeout: float = TIMEOUT) -> list[Listing | None]:
    """The rates of each (genai-prices provider id, model), in order; None for a model not listed.

    Raises ``ChildFailed`` when the child fails or does not finish in time."""
    out = await run_child(__name__, (), orjson.dumps([list(pair) for pair in pairs]), timeout)
    listings = orjson.loads(out)
    if not isinstance(listings, list) or len(listings) != len(pairs):
        raise ValueError(f"{__name__} answered {len(listings)} listing(s) for {len(pairs)} model(s)")
    return listings


def _listing(provider: str, model: str) -> Listing | None:
    from decimal import Decimal

    import genai_prices

    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1, output_tokens=1), model, provider_id=provider
        )
    except (LookupError, ValueError):  # not listed (or listed with prices genai-prices cannot apply)
        return None
    listing: Listing = {}
    for kind in KINDS:
        value = getattr(price.model_price, kind, None)
        if value is None:
            continue
        if isinstance(value, Decimal):
            listing[kind] = str(value)
        else:
            listing[kind] = {"base": str(value.base), "tiers": [[tier.start, str(tier.price)] for tier in value.tiers]}
    return listing


def main() -> int:
    pairs = orjson.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(orjson.dumps([_listing(str(provider), str(model)) for provider, model in pairs]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
