"""Client key limits (``access.quota``) at realistic sizes: token windows that cost the same whatever the count.

A moving window keeps one entry per counted unit; for tokens that is one list entry per token (``limits``
prepends ``cost`` entries), so a 200,000-token limit held up to 200,000 entries per key and each debit moved the
whole list. The token window is a sliding window counter: these tests fail on a per-token structure.
"""

from __future__ import annotations

import asyncio
import tracemalloc

from llm_proxy.access.quota import Quota
from llm_proxy.config import ClientKey

LIMIT = 2_000_000


def _key(**limits: int) -> ClientKey:
    return ClientKey(name="team", key_sha256="0" * 64, **limits)  # type: ignore[arg-type]


def test_large_token_debits_keep_the_window_small_and_stop_after_the_crossing_request() -> None:
    async def scenario() -> tuple[list[float | None], int]:
        quota = Quota(None)
        key = _key(tokens_per_minute=LIMIT)
        left: list[float | None] = [await quota.tokens_left(key)]
        await quota.debit_tokens(key, 1)  # the window exists before memory is counted
        tracemalloc.start()
        try:
            for _ in range(3):  # 3 x 600,000 = 1.8M of 2M: still some left
                await quota.debit_tokens(key, 600_000)
                left.append(await quota.tokens_left(key))
            await quota.debit_tokens(key, 600_000)  # crosses the limit: counted, the window is spent
            left.append(await quota.tokens_left(key))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await quota.close()
        return left, peak

    left, peak = asyncio.run(scenario())
    assert left[:4] == [None, None, None, None]
    assert left[4] is not None and 1.0 <= left[4] <= 60.0
    assert peak < 200_000  # a per-token list would hold 2.4M references (~19 MB)


def test_a_key_without_token_limit_is_never_counted() -> None:
    async def scenario() -> float | None:
        quota = Quota(None)
        key = _key(requests_per_minute=2)
        await quota.debit_tokens(key, 10**9)
        return await quota.tokens_left(key)

    assert asyncio.run(scenario()) is None


def test_the_request_window_refuses_the_request_over_the_limit_with_a_wait() -> None:
    async def scenario() -> list[float | None]:
        quota = Quota(None)
        key = _key(requests_per_minute=2)
        return [await quota.take_request(key) for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert (first, second) == (None, None)
    assert third is not None and 1.0 <= third <= 60.0


def test_two_replicas_share_one_token_window_through_redis(redis_url: str) -> None:
    async def scenario() -> tuple[float | None, float | None, float | None]:
        first, second = Quota(redis_url), Quota(redis_url)
        key = _key(tokens_per_minute=LIMIT)
        try:
            await first.debit_tokens(key, 1_500_000)
            before = await second.tokens_left(key)  # 500,000 left, seen by the other replica
            await second.debit_tokens(key, 600_000)  # crosses the limit on the other replica
            return before, await first.tokens_left(key), await second.tokens_left(key)
        finally:
            await first.close()
            await second.close()

    before, first_after, second_after = asyncio.run(scenario())
    assert before is None
    assert first_after is not None and 1.0 <= first_after <= 60.0
    assert second_after is not None and 1.0 <= second_after <= 60.0
