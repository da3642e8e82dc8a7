"""The ledger on a real PostgreSQL: records and reports as on SQLite; a database stopped mid-run costs only the
records that overflow the queue (counted, one warning), and writing resumes when it is back."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import pytest

from llm_proxy.config import Config
from llm_proxy.ledger.insert import row
from llm_proxy.ledger.postgres_sink import PostgresSink
from llm_proxy.ledger.prepare import prepare
from llm_proxy.ledger.record import UsageRecord
from llm_proxy.ledger.store import LedgerStore
from llm_proxy.ledger.summary import Summary
from tests.ledger.clients import ask, get, post
from tests.postgres_server import PostgresServer
from tests.servers import make_config, running_proxy

MODELS = [
    {"frontend_model_name": "m", "frontend_base_url": "/c", "backend_base_url": "mock://", "backend_model_name": "bm"}
]


def _config(url: str, **server: object) -> Config:
    return make_config(MODELS, {"usage_store": url, **server})


def _summary(url: str, by: tuple[str, ...]) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        store = LedgerStore(url)
        await store.open()
        try:
            return await store.summary(Summary(0.0, by))
        finally:
            await store.close()

    return asyncio.run(read())


def _metric(port: int, name: str) -> float:
    body = get(port, "/metrics")[2].decode()
    found = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_records_and_reports_on_postgresql(postgres: PostgresServer) -> None:
    path, body = ask("claude", "/c", "m", stream=False)
    with running_proxy(_config(postgres.url)) as proxy:
        for _ in range(3):
            assert post(proxy.port, path, body)[0] == 200
        path_s, body_s = ask("claude", "/c", "m", stream=True)
        assert post(proxy.port, path_s, body_s)[0] == 200
    (row,) = _summary(postgres.url, ("client", "model", "backend", "day"))
    assert row["requests"] == 4
    assert (row["client"], row["model"], row["backend"]) == ("-", "m", "0")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(row["day"]))
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"]) == (12, 24, None)  # bm has no price


def test_a_stopped_database_drops_only_the_overflow_and_writing_resumes(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    path, body = ask("openai-chat", "/c", "m", stream=False)
    with running_proxy(_config(postgres.url, usage_queue=5)) as proxy:
        for _ in range(2):
            assert post(proxy.port, path, body)[0] == 200
        _until(lambda: _metric(proxy.port, "llm_proxy_ledger_written_total") == 2, "2 written")
        postgres.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="llm_proxy.ledger"):
            statuses = [post(proxy.port, path, body)[0] for _ in range(12)]
            assert statuses == [200] * 12  # the proxy keeps serving
            _until(lambda: _metric(proxy.port, "llm_proxy_ledger_dropped_total") == 7, "7 dropped (5 queued)")
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "llm_proxy.ledger"]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            # the write that failed, or the queue that filled first: one line, naming the database
            assert f"to {postgres.url}" in warnings[0].getMessage()
            postgres.start()
            _until(lambda: _metric(proxy.port, "llm_proxy_ledger_written_total") == 7, "the 5 queued written")
            resumed = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
            assert resumed == [f"usage ledger writes resumed ({postgres.url}); 7 record(s) dropped so far"]
        assert post(proxy.port, path, body)[0] == 200
    assert _summary(postgres.url, ())[0]["requests"] == 8


def test_the_budgets_seed_and_a_second_prepare_on_postgresql(postgres: PostgresServer) -> None:
    """``prepare`` migrates a new database (Alembic), finds it at head the next time (asyncpg alone), and reads
    each client key's spend from a time on (priced records only)."""

    async def run() -> list[list[dict[str, float]]]:
        assert await prepare(postgres.url) == []
        sink = await PostgresSink.open(postgres.url)
        records = [_record("alice", 100.0, 0.25), _record("alice", 200.0, 0.5), _record("bob", 200.0, None)]
        await sink.write([row(record, record.cost_usd) for record in records])
        await sink.close()
        return [await prepare(postgres.url, (0.0, 150.0)), await prepare(postgres.url, (300.0,))]

    assert asyncio.run(run()) == [[{"alice": 0.75}, {"alice": 0.5}], [{}]]


def _record(client: str, when: float, cost: float | None) -> UsageRecord:
    return UsageRecord(
        time=when,
        request_id=f"r-{client}-{when}",
        client=client,
        prefix="/c",
        frontend_model="m",
        backend="0",
        backend_model="bm",
        frontend_dialect="claude",
        backend_dialect="claude",
        status=200,
        duration=0.1,
        ttft=None,
        input_tokens=10,
        output_tokens=5,
        cost_usd=cost,
    )
