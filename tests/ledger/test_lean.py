"""The serving process stays lean: SQLAlchemy, Alembic and genai-prices run in child processes only (the
migrations in ``prepare``, the price table in ``prices_lookup``), and nothing at all runs without a ledger or a
budget; a ledger that cannot be prepared costs only the records that overflow its queue."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import genai_prices
import orjson
import pytest

from llm_proxy.ledger.child import ChildFailed, run_child
from llm_proxy.ledger.insert import FIELDS, insert_sql
from llm_proxy.ledger.prepare import HEAD
from llm_proxy.ledger.schema import USAGE
from tests.ledger.clients import ask, get, post, rows
from tests.servers import make_config, running_proxy

REPO = Path(__file__).resolve().parents[2]


def _probe(server: dict[str, Any]) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "tests.ledger.lean_probe", orjson.dumps(server).decode()],
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, list[str]] = orjson.loads(result.stdout)
    return report


def _genai_cost(row: dict[str, Any]) -> float:
    counted = genai_prices.Usage(
        input_tokens=row["input_tokens"] + row["cache_read_tokens"] + row["cache_write_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
    )
    return float(genai_prices.calc_price(counted, row["backend_model"], provider_id="anthropic").total_price)


def test_a_served_sqlite_ledger_writes_priced_records_without_loading_sqlalchemy_or_genai_prices(
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.db"
    report = _probe({"usage_store": f"sqlite:///{db}"})
    assert report["loaded"] == [], f"the serving process loaded {report['loaded']}"
    # the migrations once; the prices of the configured model at start, the proxy route's with the first batch
    assert sorted(set(report["launched"])) == ["llm_proxy.ledger.prepare", "llm_proxy.ledger.prices_lookup"]
    assert report["launched"].count("llm_proxy.ledger.prepare") == 1
    found = rows(db)
    assert [r["backend_model"] for r in found] == ["claude-sonnet-4-5"] * 2 + ["claude-3-5-haiku-20241022"] * 2
    for row in found:
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["cost_usd"] == _genai_cost(row), row


def test_without_a_ledger_or_budgets_nothing_is_priced_nor_looked_up() -> None:
    report = _probe({"usage_store": "none"})
    assert report == {"loaded": [], "launched": []}


def _metric(port: int, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", get(port, "/metrics")[2].decode(), re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_a_database_that_cannot_be_prepared_queues_then_drops_records_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql://app:hunter2-not-shown@127.0.0.1:1/usage"  # nothing listens on port 1
    models = [{"frontend_model_name": "m", "frontend_base_url": "/c", "backend_base_url": "mock://"}]
    path, body = ask("claude", "/c", "m", stream=False)
    with caplog.at_level(logging.INFO, logger="llm_proxy.ledger"):
        with running_proxy(make_config(models, {"usage_store": url, "usage_queue": 5})) as proxy:
            assert [post(proxy.port, path, body)[0] for _ in range(2)] == [200] * 2  # requests never wait
            deadline = time.monotonic() + 30
            while not any(r.levelno >= logging.WARNING for r in caplog.records):  # the prepare child failed
                assert time.monotonic() < deadline, "no warning"
                time.sleep(0.05)
            assert [post(proxy.port, path, body)[0] for _ in range(6)] == [200] * 6
            assert _metric(proxy.port, "llm_proxy_ledger_dropped_total") == 3  # 5 queued
            assert _metric(proxy.port, "llm_proxy_ledger_written_total") == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # the outage, then at shutdown the records never written
    outage = "usage ledger: cannot write to postgresql://app:***@127.0.0.1:1/usage (records queue, then drop): "
    assert warnings[0].startswith(outage)
    assert "Connect call failed" in warnings[0] or "Connection refused" in warnings[0], warnings[0]
    assert warnings[1] == (
        "usage ledger: 5 record(s) not written at shutdown (postgresql://app:***@127.0.0.1:1/usage unavailable)"
    )
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


def test_the_insert_names_the_schemas_columns() -> None:
    """``schema.USAGE`` (the migrations' table) is the source of the schema; the INSERT the serving process
    writes with (no SQLAlchemy there) names the same columns."""
    assert FIELDS == tuple(column.name for column in USAGE.columns if column.name != "id")
    assert insert_sql("qmark").startswith(f"INSERT INTO {USAGE.name} (time, request_id, ")
    assert insert_sql("numeric_dollar").endswith(f"${len(FIELDS)})")


async def test_a_child_that_outlives_its_timeout_or_its_caller_is_killed_and_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[asyncio.subprocess.Process] = []
    original = asyncio.create_subprocess_exec

    async def keeping(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await original(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", keeping)
    sleeper = ["-n", "1", "-r", "1", "import time; time.sleep(60)"]  # ``python -m timeit``: a child that hangs
    with pytest.raises(ChildFailed, match=r"^timeit did not finish within 0.5 s$"):
        await run_child("timeit", sleeper, b"", timeout=0.5)
    caller = asyncio.get_running_loop().create_task(run_child("timeit", sleeper, b"", timeout=60))
    while len(started) < 2:
        await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert [proc.returncode for proc in started] == [-signal.SIGKILL] * 2  # killed, and waited for


def test_head_is_the_newest_migration() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(REPO / "src" / "llm_proxy" / "ledger" / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


_PREPARE_TWICE = """
import asyncio, sys
from llm_proxy.ledger.prepare import _prepare
first = asyncio.run(_prepare(sys.argv[1], [0.0]))
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("sqlalchemy", "alembic"))
for name in loaded:
    del sys.modules[name]
second = asyncio.run(_prepare(sys.argv[1], [0.0]))
again = sorted(name for name in sys.modules if name.split(".")[0] in ("sqlalchemy", "alembic"))
print(bool(loaded), again, first == second == [{}])
"""


def test_a_database_at_head_is_prepared_without_sqlalchemy_or_alembic(tmp_path: Path) -> None:
    """A new database is migrated by Alembic; at the next start the plain driver finds it at ``HEAD``."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    result = subprocess.run(
        [sys.executable, "-c", _PREPARE_TWICE, url], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "[]", "True"]
