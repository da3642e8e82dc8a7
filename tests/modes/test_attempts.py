"""Attempt order, cooldown and Retry-After, with a fake clock and a seeded random source: no sleeping."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from llm_proxy.config import Route
from llm_proxy.modes.attempts import BACKOFF_CAP, Health, backoff, retry_after
from tests.servers import make_config


def _route(**extra: object) -> Route:
    entry: dict[str, object] = {
        "frontend_model_name": "m",
        "frontend_base_url": "/r",
        "frontend_dialect": "claude",
        "backends": [
            {"name": "heavy", "backend_dialect": "claude", "backend_base_url": "https://a.example", "weight": 3},
            {"name": "light", "backend_dialect": "claude", "backend_base_url": "https://b.example", "weight": 1},
        ],
        "fallbacks": [{"name": "gpt", "backend_dialect": "openai-chat", "backend_base_url": "https://c.example"}],
        "retries": 2,
        "cooldown": {"failures": 2, "window": 60, "seconds": 30},
    }
    entry.update(extra)
    return make_config([entry]).routes[0]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_weighted_split_within_tolerance() -> None:
    route = _route()
    health = Health(rng=random.Random(7))
    firsts = Counter(health.order(route)[0].name for _ in range(800))
    assert set(firsts) == {"heavy", "light"}
    assert 0.70 <= firsts["heavy"] / 800 <= 0.80  # 3:1 weights
    assert [b.name for b in health.order(route)][2:] == ["gpt"]  # fallbacks after the whole pool


def test_equal_weights_put_each_backend_first_as_often_and_keep_every_order_possible() -> None:
    backends = [
        {"name": name, "backend_dialect": "claude", "backend_base_url": f"https://{name}.example"}
        for name in ("a", "b", "c")
    ]
    route = _route(backends=backends, fallbacks=None)
    health = Health(rng=random.Random(11))
    orders = Counter(tuple(b.name for b in health.order(route)) for _ in range(3000))
    assert len(orders) == 6  # all permutations
    assert all(400 <= count <= 600 for count in orders.values()), orders  # 500 each


def test_cooling_pool_members_and_fallbacks_go_after_the_healthy_ones() -> None:
    two_fallbacks = [
        {"name": name, "backend_dialect": "openai-chat", "backend_base_url": f"https://{name}.example"}
        for name in ("gpt", "gpt-b")
    ]
    route = _route(fallbacks=two_fallbacks, cooldown={"failures": 1, "window": 60, "seconds": 30})
    clock = Clock()
    health = Health(clock=clock, rng=random.Random(5))
    heavy, light = route.backends
    for backend in (light, route.fallbacks[0], heavy):  # each cools at its first failure, in this order
        clock.now += 1
        health.failed(route, backend)
    assert [b.name for b in health.order(route)] == ["light", "heavy", "gpt-b", "gpt"]
    clock.now += 28.5  # light's cooldown is over, the others' are not
    assert [b.name for b in health.order(route)] == ["light", "heavy", "gpt-b", "gpt"]
    health.succeeded(route, heavy)
    firsts = Counter(health.order(route)[0].name for _ in range(400))
    assert set(firsts) == {"heavy", "light"} and firsts["heavy"] > firsts["light"]


def test_attempts_are_retries_plus_one_cycling_when_short() -> None:
    route = _route(retries=4)
    names = [b.name for b in Health(rng=random.Random(1)).attempts(route)]
    assert len(names) == 5 and names[2] == "gpt" and names[3:] == names[:2]
    single = make_config([{"frontend_model_name": "m", "frontend_base_url": "/x", "backend_base_url": "mock://",
                           "retries": 2}]).routes[0]  # fmt: skip
    assert [b.name for b in Health().attempts(single)] == ["0", "0", "0"]


def test_cooldown_skips_a_failing_backend_then_gives_it_one_trial() -> None:
    route = _route()
    clock = Clock()
    health = Health(clock=clock, rng=random.Random(3))
    heavy = route.backends[0]
    health.failed(route, heavy)
    assert not health.cooling(route, heavy)  # one failure: not yet
    health.failed(route, heavy)
    assert health.cooling(route, heavy)
    for _ in range(50):
        assert [b.name for b in health.order(route)] == ["light", "heavy", "gpt"]
    clock.now += 30.1
    assert not health.cooling(route, heavy)  # the trial request may go to it again
    health.failed(route, heavy)  # the trial fails: cooled again at once
    assert health.cooling(route, heavy)
    clock.now += 30.1
    health.succeeded(route, heavy)
    health.failed(route, heavy)
    assert not health.cooling(route, heavy)  # a success reset the count


def test_failures_outside_the_window_do_not_count() -> None:
    route = _route()
    clock = Clock()
    health = Health(clock=clock)
    health.failed(route, route.backends[0])
    clock.now += 61
    health.failed(route, route.backends[0])
    assert not health.cooling(route, route.backends[0])


def test_when_every_backend_cools_the_least_recently_failed_goes_first() -> None:
    route = _route(fallbacks=None)
    clock = Clock()
    health = Health(clock=clock)
    heavy, light = route.backends
    for backend in (light, light, heavy, heavy):
        clock.now += 1
        health.failed(route, backend)
    assert [b.name for b in health.order(route)] == ["light", "heavy"]


def test_a_retry_after_cools_the_backend_for_that_long() -> None:
    route = _route()
    clock = Clock()
    health = Health(clock=clock)
    health.failed(route, route.backends[1], wait=5.0)
    assert health.cooling(route, route.backends[1])
    clock.now += 5.01
    assert not health.cooling(route, route.backends[1])


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "1"}, 1.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "1s"}, 1.0),
        ({"x-ratelimit-reset-tokens": "250ms"}, 0.25),
        ({"x-ratelimit-reset-requests": "12"}, 12.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    headers = {"retry-after": format_datetime(datetime(2026, 11, 27, 12, 0, 3, tzinfo=UTC), usegmt=True)}
    assert retry_after(headers, now=lambda: now.timestamp()) == 3.0


def test_backoff_is_full_jitter_under_the_cap() -> None:
    rng = random.Random(5)
    for attempt in range(12):
        values = [backoff(attempt, rng) for _ in range(200)]
        assert min(values) >= 0 and max(values) <= min(BACKOFF_CAP, 0.25 * 2**attempt)
    assert max(backoff(10, rng) for _ in range(200)) > BACKOFF_CAP / 2
