"""``python -m bench.ledger``: what the usage ledger costs, and how fast its stores write.

1. Proxy-mode, non-streamed throughput (wrk, closed loop) with ``usage_store: none`` and with SQLite, in
   alternating rounds (none then sqlite, sqlite then none, ...) so that drift on a shared machine hits both alike; the
   proxy alone on one CPU, wrk and the mock upstream on the other (``bench.ab``, ``bench.processes.Layout``).
2. The write rate of each store: the serving process's sink (``sqlite3`` on one thread, ``asyncpg``) writing
   batches of ``--batch`` records (one executemany, one transaction each, as the writer does), for SQLite and,
   with ``--postgres URL``, PostgreSQL.
3. The CPU the serving process spends per record on the ledger's way (queue, price, batched write).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from bench.ab import rounds as paired_rounds
from bench.ab import side_by_side
from bench.payloads import chat_request
from llm_proxy.ledger.record import UsageRecord


def _config(path: Path, port: int, upstream: int, store: str) -> Path:
    models = [
        {
            "frontend_model_name": "bench",
            "frontend_base_url": "/p",
            "backend_base_url": f"http://127.0.0.1:{upstream}",
            "backend_model_name": "claude-sonnet-4-5",
        }
    ]
    server = {"port": port, "access_log": False, "log_level": "warning", "usage_store": store}
    path.write_text(yaml.safe_dump({"server": server, "models": models}))
    return path


def throughput(
    rounds: int, duration: float, concurrency: int, work: Path, together: bool = False
) -> dict[str, list[float]]:
    """Paired rounds of ``none`` and ``sqlite`` (``bench.ab``): req/s and CPU µs per request of each run."""

    def configure(store: str, n: int, port: int, upstream: int) -> Path:
        url = "none" if store == "none" else f"sqlite:///{work / f'usage-{n}.db'}"
        return _config(work / f"{store}-{n}.yaml", port, upstream, url)

    # The warm-up gives the ledger time to open its database.
    runs = (side_by_side if together else paired_rounds)(
        ("none", "sqlite"),
        configure,
        work,
        count=rounds,
        duration=duration,
        concurrency=concurrency,
        body=chat_request("bench"),
    )
    return {**runs.rps, **{f"{store} cpu": cpu for store, cpu in runs.cpu_us.items()}}


def _records(count: int) -> list[UsageRecord]:
    now = time.time()
    return [
        UsageRecord(
            time=now + i / 1000,
            request_id=f"{i:032x}",
            client=f"client-{i % 20}",
            prefix="/p",
            frontend_model="bench",
            backend="0",
            backend_model="claude-sonnet-4-5",
            frontend_dialect="openai-chat",
            backend_dialect="claude",
            status=200,
            duration=0.012,
            ttft=None,
            input_tokens=1200,
            output_tokens=300,
            cache_read_tokens=5000,
            cost_usd=0.0096,
        )
        for i in range(count)
    ]


async def write_rate(url: str, total: int, batch: int) -> float:
    from llm_proxy.ledger.insert import row
    from llm_proxy.ledger.prepare import prepare
    from llm_proxy.ledger.service import open_sink

    await prepare(url)
    sink = await open_sink(url)
    records = _records(total)
    try:
        started = time.perf_counter()
        for i in range(0, total, batch):
            await sink.write([row(r, r.cost_usd) for r in records[i : i + batch]])
        return total / (time.perf_counter() - started)
    finally:
        await sink.close()


async def cpu_per_record(url: str, total: int) -> float:
    """CPU µs the proxy's process spends per record on the ledger's way: queue, price (genai-prices' rates for
    Sonnet, a cache-read answer), write in batches. Measured with ``time.process_time`` (every thread)."""
    from llm_proxy.config import parse_config
    from llm_proxy.ledger.service import Ledger

    models = [{"frontend_model_name": "b", "frontend_base_url": "/", "backend_base_url": "mock://"}]
    server = {"usage_store": url, "usage_queue": total}
    ledger = Ledger(parse_config({"server": server, "models": models}, "bench.yaml", {}))
    await ledger.start()
    assert ledger.writer is not None
    await ledger.wait_ready(30)
    await ledger.pricer.learn([("anthropic", "claude-sonnet-4-5")])  # the lookup is once per process
    records = [dataclasses.replace(r, cost_usd=None) for r in _records(total)]
    started = time.process_time()
    for i, record in enumerate(records):
        ledger.finish(record, None, False)
        if i % 500 == 499:
            await asyncio.sleep(0)  # requests arrive over time: let the writer run between them
    while ledger.writer.written < total:
        await asyncio.sleep(0.001)
    spent = time.process_time() - started
    await ledger.close(30)
    return spent / total * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--records", type=int, default=50_000, help="records per write-rate run")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", help="also measure PostgreSQL's write rate (a database to use)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--side-by-side", action="store_true", help="both configs at the same time on one core (bench.ab.side_by_side)"
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        work = Path(tmp)
        if not options.skip_throughput:
            rps = throughput(options.rounds, options.duration, options.concurrency, work, options.side_by_side)
            none, sqlite = statistics.median(rps["none"]), statistics.median(rps["sqlite"])
            print(
                f"throughput (median of {options.rounds}): none {none:.0f} req/s, sqlite {sqlite:.0f} req/s, "
                f"ledger cost {(1 - sqlite / none) * 100:.1f}%"
            )
            cpu_none, cpu_sqlite = statistics.median(rps["none cpu"]), statistics.median(rps["sqlite cpu"])
            print(
                f"CPU µs/request (median): none {cpu_none:.0f}, sqlite {cpu_sqlite:.0f}, "
                f"ledger cost {(cpu_sqlite / cpu_none - 1) * 100:.1f}%"
            )
        stores = {"sqlite": f"sqlite:///{work / 'rate.db'}"}
        if options.postgres:
            stores["postgresql"] = options.postgres
        for name, url in stores.items():
            rate = asyncio.run(write_rate(url, options.records, options.batch))
            print(f"write rate {name}: {rate:,.0f} records/s (batches of {options.batch})")
        for name, url in stores.items():
            url = f"sqlite:///{work / 'cpu.db'}" if name == "sqlite" else url
            cpu = asyncio.run(cpu_per_record(url, options.records))
            print(f"ledger CPU per request, {name}: {cpu:.1f} µs (queue, price, batched write)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
