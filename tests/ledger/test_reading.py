"""Reading the ledger: ``llm-proxy usage`` (table and JSON), ``GET /api/usage`` (same rows), the records API,
the dashboard files, and the admin key in front of them."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from llm_proxy.config import load_config
from llm_proxy.ledger.insert import row
from llm_proxy.ledger.record import UsageRecord
from llm_proxy.ledger.sqlite_sink import SqliteSink
from llm_proxy.ledger.store import LedgerStore
from tests.ledger.clients import get
from tests.servers import running_proxy

ADMIN = "admin-key-0123456789abcdef"
DAY1 = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC).timestamp()
DAY2 = dt.datetime(2026, 3, 3, 23, 30, tzinfo=dt.UTC).timestamp()


def _record(when: float, client: str, model: str, tokens: int, cost: float | None, **extra: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "time": when,
        "request_id": f"r{when}{client}{model}",
        "client": client,
        "prefix": "/v",
        "frontend_model": model,
        "backend": "0",
        "backend_model": f"{model}-backend",
        "frontend_dialect": "claude",
        "backend_dialect": "claude",
        "status": 200,
        "duration": 0.5,
        "ttft": None,
        "input_tokens": tokens,
        "output_tokens": tokens * 2,
        "cache_read_tokens": tokens * 10,
        "cache_write_tokens": 1,
        "reasoning_tokens": 3,
        "cost_usd": cost,
    }
    values.update(extra)
    return UsageRecord(**values)


SEED = [
    _record(DAY1, "alice", "sonnet", 100, 0.25),
    _record(DAY1 + 60, "alice", "sonnet", 50, 0.125),
    _record(DAY1 + 120, "bob", "gpt", 10, None),
    _record(DAY2, "alice", "gpt", 1000, 1.5),
    _record(DAY1 - 86400 * 3, "old", "sonnet", 7, 9.0),  # before --since
]


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    db = tmp_path / "ledger.db"
    config = tmp_path / "proxy.yaml"
    models = [{"frontend_model_name": "m", "frontend_base_url": "/v", "backend_base_url": "mock://"}]
    config.write_text(
        yaml.safe_dump({"server": {"usage_store": "sqlite:///ledger.db", "admin_key": ADMIN}, "models": models})
    )

    async def seed() -> None:
        store = LedgerStore(f"sqlite:///{db}")
        await store.open()  # migrates, as the prepare child does
        await store.close()
        sink = await SqliteSink.open(f"sqlite:///{db}")  # writes, as the serving process does
        await sink.write([row(record, record.cost_usd) for record in SEED])
        await sink.close()

    asyncio.run(seed())
    return config


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_proxy", "usage", *args], capture_output=True, text=True, timeout=60
    )


EXPECTED = [
    {
        "client": "alice",
        "model": "gpt",
        "requests": 1,
        "input_tokens": 1000,
        "output_tokens": 2000,
        "cache_read_tokens": 10000,
        "cache_write_tokens": 1,
        "reasoning_tokens": 3,
        "cost_usd": 1.5,
    },
    {
        "client": "alice",
        "model": "sonnet",
        "requests": 2,
        "input_tokens": 150,
        "output_tokens": 300,
        "cache_read_tokens": 1500,
        "cache_write_tokens": 2,
        "reasoning_tokens": 6,
        "cost_usd": 0.375,
    },
    {
        "client": "bob",
        "model": "gpt",
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_tokens": 100,
        "cache_write_tokens": 1,
        "reasoning_tokens": 3,
        "cost_usd": None,
    },
]


def test_usage_json_is_the_grouped_rows_and_nothing_else(seeded: Path) -> None:
    result = _cli("--config", str(seeded), "--since", "2026-03-01", "--by", "client,model", "--json")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == EXPECTED


def test_usage_table_by_day(seeded: Path) -> None:
    result = _cli("--config", str(seeded), "--since", "2026-03-01", "--by", "day")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "usage since 2026-03-01 00:00:00 UTC\n"
        "DAY         REQUESTS  INPUT  OUTPUT  CACHE READ  CACHE WRITE  REASONING  COST USD\n"
        "2026-03-02         3    160     320       1,600            3          9  0.375000\n"
        "2026-03-03         1  1,000   2,000      10,000            1          3  1.500000\n"
        "TOTAL              4  1,160   2,320      11,600            4         12  1.875000\n"
    )


def test_usage_rejects_unknown_groups(seeded: Path) -> None:
    result = _cli("--config", str(seeded), "--by", "colour")
    assert result.returncode == 2
    assert "by 'colour': group by any of client, model, backend, backend_model, prefix, day" in result.stderr
    assert result.stdout == ""


def _basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()}


def test_api_usage_serves_the_same_rows_behind_the_admin_key(seeded: Path) -> None:
    with running_proxy(load_config(seeded)) as proxy:
        path = "/api/usage?since=2026-03-01&by=client,model"
        status, _, body = get(proxy.port, path, {"authorization": f"Bearer {ADMIN}"})
        assert status == 200
        doc = orjson.loads(body)
        assert doc == {
            "since": dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp(),
            "by": ["client", "model"],
            "rows": EXPECTED,
        }
        status, _, basic = get(proxy.port, path, _basic(ADMIN))
        assert (status, basic) == (200, body)
        for headers in ({}, _basic("wrong-key"), {"authorization": "Bearer wrong"}, {"authorization": ADMIN}):
            status, got, body = get(proxy.port, path, headers)
            assert status == 401
            assert got["www-authenticate"] == 'Basic realm="llm-proxy"'
        status, _, body = get(proxy.port, "/api/usage?since=yesterday", {"authorization": f"Bearer {ADMIN}"})
        assert status == 400
        assert orjson.loads(body) == {
            "error": "since 'yesterday': give a span (30m, 24h, 7d, 2w) or a date (YYYY-MM-DD)"
        }


def test_records_api_newest_last(seeded: Path) -> None:
    with running_proxy(load_config(seeded)) as proxy:
        status, headers, body = get(proxy.port, "/api/usage/records?since=2026-03-01", _basic(ADMIN))
    assert status == 200
    assert headers["cache-control"] == "no-store"
    doc = orjson.loads(body)
    assert set(doc) == {"since", "now", "records", "truncated"}
    assert doc["truncated"] is False
    import dataclasses

    assert doc["records"] == [dataclasses.asdict(r) for r in sorted(SEED[:4], key=lambda r: r.time)]


def test_dashboard_files_only_from_the_package_folder(seeded: Path) -> None:
    index = (Path(__file__).resolve().parents[2] / "src/llm_proxy/ledger/dashboard/index.html").read_bytes()
    auth = {"authorization": f"Bearer {ADMIN}"}
    with running_proxy(load_config(seeded)) as proxy:
        for path in ("/dashboard", "/dashboard/", "/dashboard/index.html"):
            status, headers, body = get(proxy.port, path, auth)
            assert (status, headers["content-type"], headers["cache-control"], body) == (
                200,
                "text/html; charset=utf-8",
                "no-store",
                index,
            )
        for path in ("/dashboard/../server.py", "/dashboard/..%2fschema.py", "/dashboard/missing.js", "/dashboard/a/b"):
            assert get(proxy.port, path, auth)[0] == 404, path
        assert get(proxy.port, "/dashboard", {})[0] == 401


def test_without_an_admin_key_the_admin_paths_do_not_exist(tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    models = [{"frontend_model_name": "m", "frontend_base_url": "/v", "backend_base_url": "mock://"}]
    config.write_text(yaml.safe_dump({"models": models}))
    with running_proxy(load_config(config)) as proxy:
        for path in ("/api/usage", "/api/usage/records", "/dashboard", "/dashboard/index.html"):
            assert get(proxy.port, path, {"authorization": "Bearer anything-at-all"})[0] == 404
    assert (tmp_path / "usage.db").exists()  # the ledger is on by default: usage.db beside the config
