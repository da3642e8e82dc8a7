"""``python -m bench.keycheck``: what the client-key check costs per request (identify, allow, count), in µs.

Measured in-process on the gate alone: 20 configured keys taking turns, each with a requests-per-minute
limit (the in-memory moving window), so every request is looked up, compared, allowed and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from llm_proxy.access.gate import Gate, Signed
from llm_proxy.access.quota import Quota
from llm_proxy.config import parse_config
from llm_proxy.routing import Router


async def _measure(rounds: int, per_round: int) -> list[float]:
    keys = [
        {"name": f"user{i}", "key": f"lpk-bench-user-{i:04d}-0123456789abcdef", "requests_per_minute": 100_000}
        for i in range(20)
    ]
    models = [
        {
            "frontend_model_name": "m",
            "frontend_base_url": "/p",
            "backend_base_url": "https://up.example",
            "backend_api_key": "sk-route-key-000000",
        }
    ]
    config = parse_config({"models": models, "client_keys": keys}, "bench.yaml", {})
    route = config.routes[0]
    target = Router(config.routes).match("/p/v1/messages")
    assert target is not None
    gate = Gate(config.client_keys, Quota(None))
    # The keys take turns, as a team's would: each key's one-minute window holds what it really sent.
    headers = [{"x-api-key": f"lpk-bench-user-{i:04d}-0123456789abcdef"} for i in range(20)]
    signed = Signed("POST", "/p/v1/messages", b"")
    samples: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        for n in range(per_round):
            if gate.required(route, target):
                key = gate.identify(route, target, headers[n % 20], signed)
                gate.allowed(key, route, "m")
                await gate.admit(key)
        samples.append((time.perf_counter() - started) / per_round * 1e6)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.keycheck", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=20_000)
    options = parser.parse_args(argv)
    samples = asyncio.run(_measure(options.rounds, options.per_round))
    print(f"client-key check: median {statistics.median(samples):.1f} µs per request (min {min(samples):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
