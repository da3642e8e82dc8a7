"""Costs: genai-prices by provider and model (cache reads included), the config's ``prices:`` first, unknown null."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import genai_prices
import orjson
import pytest
from genai_prices.types import ModelPrice, Tier, TieredPrices

from llm_proxy.canonical import Usage
from llm_proxy.config import Rates
from llm_proxy.ledger.child import ChildFailed
from llm_proxy.ledger.prices import Pricer
from llm_proxy.ledger.prices_lookup import Listing
from tests.ledger.clients import post, rows
from tests.servers import Recorded, RecordingUpstream, Reply, ServerThread, make_config, running_proxy

SONNET = "claude-sonnet-4-5"
USAGE = Usage(input_tokens=1_200, output_tokens=700, cache_read_tokens=30_000, cache_write_tokens=0)


def _sonnet_rates() -> tuple[Decimal, Decimal, Decimal]:
    """Input, output and cache-read USD per million tokens of Sonnet 4.5, as genai-prices lists them."""
    probe = genai_prices.Usage(input_tokens=1, output_tokens=1)
    price = genai_prices.calc_price(probe, SONNET, provider_id="anthropic").model_price
    rates = (price.input_mtok, price.output_mtok, price.cache_read_mtok)
    tiered = [rate for rate in rates if isinstance(rate, TieredPrices)]
    assert len(tiered) == 3  # Anthropic's tiers begin at 200k input tokens: these requests pay the base rates
    return tiered[0].base, tiered[1].base, tiered[2].base


def _by_hand() -> float:
    input_rate, output_rate, cache_read_rate = _sonnet_rates()
    assert (input_rate, output_rate, cache_read_rate) == (Decimal(3), Decimal(15), Decimal("0.3"))
    total = 1_200 * input_rate + 700 * output_rate + 30_000 * cache_read_rate
    return float(total / 1_000_000)


async def test_claude_with_cache_reads_costs_what_genai_prices_lists() -> None:
    assert _by_hand() == 0.0231  # 0.0036 + 0.0105 + 0.009
    assert await Pricer({}).priced("anthropic", SONNET, USAGE) == _by_hand()


async def test_a_prices_entry_overrides_and_unknown_models_cost_null() -> None:
    pricer = Pricer({SONNET: Rates(input=1.0, output=2.0, cache_read=0.5), "house-model": Rates(input=4, output=8)})
    assert await pricer.priced("anthropic", SONNET, USAGE) == (1_200 * 1.0 + 700 * 2.0 + 30_000 * 0.5) / 1e6
    # a cache kind without its own rate pays the input rate
    assert await pricer.priced(None, "house-model", USAGE) == (1_200 * 4 + 700 * 8 + 30_000 * 4) / 1e6
    assert pricer.lookups == 0  # the config's prices need no lookup
    assert await pricer.priced("anthropic", "no-such-model-x", USAGE) is None
    assert await Pricer({}).priced(None, SONNET, USAGE) is None  # no provider (a path no dialect claims): no guess
    assert await pricer.priced("anthropic", "no-such-model-x", Usage()) == 0.0  # nothing used costs nothing
    assert pricer.lookups == 1  # an unlisted model is remembered as such


def test_the_ledger_prices_a_claude_answer_with_cache_reads(tmp_path: Path) -> None:
    async def claude(req: Recorded, reply: Reply) -> None:
        usage = {"input_tokens": 1_200, "cache_read_input_tokens": 30_000, "output_tokens": 700}
        body = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": SONNET,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": usage,
        }
        await reply.json(200, orjson.dumps(body))

    db = tmp_path / "usage.db"
    with ServerThread(RecordingUpstream(claude)) as upstream:
        models = [
            {
                "frontend_model_name": "sonnet",
                "frontend_base_url": "/c",
                "backend_base_url": upstream.url,
                "backend_model_name": SONNET,
            },
            {
                "frontend_model_name": "other",
                "frontend_base_url": "/c",
                "backend_base_url": upstream.url,
                "backend_model_name": "no-such-model-x",
            },
        ]
        with running_proxy(make_config(models, {"usage_store": f"sqlite:///{db}"})) as proxy:
            for model in ("sonnet", "other"):
                body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
                assert post(proxy.port, "/c/v1/messages", body)[0] == 200
    found = rows(db)
    assert [(r["input_tokens"], r["cache_read_tokens"], r["output_tokens"]) for r in found] == [
        (1_200, 30_000, 700)
    ] * 2
    assert [r["cost_usd"] for r in found] == [_by_hand(), None]


async def test_the_kept_rates_price_exactly_as_genai_prices_does() -> None:
    """The pricer keeps each model's rates (looked up in a child process, all at once) and multiplies;
    genai-prices' own calculation agrees to the cent's last digit, tiers (above 200k input tokens) and models
    without a cache-write rate included."""
    pricer = Pricer({})
    usages = [
        Usage(input_tokens=1_200, output_tokens=300, cache_read_tokens=5_000, cache_write_tokens=77),
        Usage(input_tokens=250_000, output_tokens=3, cache_read_tokens=1),
        Usage(input_tokens=10),
    ]
    models = [
        ("anthropic", "anthropic", SONNET),
        ("anthropic", "anthropic", "claude-opus-4-1"),
        ("openai", "openai", "gpt-4o"),
        ("openai", "openai", "gpt-4.1-mini"),
        ("aws.bedrock", "aws", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ]
    await pricer.learn((provider, model) for provider, _, model in models)
    assert pricer.lookups == 1
    for provider, genai, model in models:
        for usage in usages:
            counted = genai_prices.Usage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            )
            listed = float(genai_prices.calc_price(counted, model, provider_id=genai).total_price)
            assert pricer.cost(provider, model, usage) == listed, (model, usage)


async def test_rates_finer_than_a_picodollar_are_exact_fractions() -> None:
    """No listed model has such rates today; a lookup answering them prices exactly as genai-prices would."""
    listing = {
        "input_mtok": {"base": "0.1234567", "tiers": [[1000, "0.0000003"]]},
        "output_mtok": "1.0000001",
        "cache_read_mtok": "0.01234567",
    }
    asked: list[list[tuple[str, str]]] = []

    async def lookup(pairs: Sequence[tuple[str, str]]) -> list[Listing | None]:
        asked.append(list(pairs))
        await asyncio.sleep(0.05)
        return [listing for _ in pairs]

    pricer = Pricer({}, lookup)
    model_price = ModelPrice(
        input_mtok=TieredPrices(base=Decimal("0.1234567"), tiers=[Tier(start=1000, price=Decimal("0.0000003"))]),
        output_mtok=Decimal("1.0000001"),
        cache_read_mtok=Decimal("0.01234567"),
    )
    usages = [
        Usage(input_tokens=i * 7, output_tokens=o * 11, cache_read_tokens=i * 13, cache_write_tokens=3)
        for i in range(1, 60, 3)
        for o in range(1, 40, 7)
    ]  # about a quarter of these would differ if the exact sum were rounded to a float before the division
    # the askers at once share one lookup
    costs = await asyncio.gather(*(pricer.priced("anthropic", "fine", usage) for usage in usages))
    assert asked == [[("anthropic", "fine")]]
    for usage, cost in zip(usages, costs, strict=True):
        counted = genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        assert cost == float(model_price.calc_price(counted)["total_price"]), usage


async def test_a_failed_lookup_costs_null_and_is_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def lookup(pairs: Sequence[tuple[str, str]]) -> list[Listing | None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ChildFailed("llm_proxy.ledger.prices_lookup did not finish within 30 s")
        return [{"input_mtok": "1", "output_mtok": "2"} for _ in pairs]

    pricer = Pricer({}, lookup)
    with caplog.at_level(logging.INFO, logger="llm_proxy.ledger"):
        assert await pricer.priced("openai", "m", USAGE) is None  # not a guess
        assert await pricer.priced("openai", "m", USAGE) == (31_200 * 1 + 700 * 2) / 1e6
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "did not finish within 30 s" in caplog.records[0].getMessage()


def test_a_backend_without_dialect_is_looked_up_at_start_under_every_provider() -> None:
    from llm_proxy.config import parse_config
    from llm_proxy.ledger.service import configured_models

    models = [
        {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "http://127.0.0.1:9",
         "backend_model_name": "claude-sonnet-4-5"},
        {"frontend_model_name": "c", "frontend_base_url": "/c", "backend_base_url": "http://127.0.0.1:9",
         "backend_model_name": "gpt-4o", "frontend_dialect": "claude", "backend_dialect": "openai-chat"},
        {"frontend_model_name": "*", "frontend_base_url": "/any", "backend_base_url": "http://127.0.0.1:9",
         "backend_model_name": "{model}"},
    ]  # fmt: skip
    found = configured_models(parse_config({"models": models}, "t.yaml", {}))
    providers = sorted(str(provider) for provider, model in found if model == "claude-sonnet-4-5")
    assert providers == ["anthropic", "aws.bedrock", "gcp.gemini", "openai"]  # proxy mode: any client dialect
    assert [pair for pair in found if pair[1] == "gpt-4o"] == [("openai", "gpt-4o")]
    assert not [pair for pair in found if "{model}" in pair[1]]  # a pattern names no model to look up
