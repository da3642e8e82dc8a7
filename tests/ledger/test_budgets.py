"""Client key budgets: the request after the one that spends a budget gets 429 in its client's dialect, naming
the budget and its reset, with Retry-After; counted in memory (seeded from the ledger) or in Redis across
replicas."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from llm_proxy.config import Config, parse_config
from tests.ledger.clients import ask, rows
from tests.redis_server import RedisServer
from tests.servers import running_proxy

KEY = "budget-key-0123456789"
HEADERS = {"x-llm-proxy-key": KEY}
PRICE = {"input": 1000.0, "output": 1000.0}
"""USD per million: a mock answer ("hi there": 3 input, 6 output tokens) costs 0.009."""


def _config(server: dict[str, Any], *, day: float | None = 0.001, month: float | None = None) -> Config:
    models = [
        {
            "frontend_model_name": f"m-{slug}",
            "frontend_base_url": f"/{slug}",
            "backend_base_url": "mock://",
            "backend_model_name": "priced",
            "require_client_key": True,
        }
        for slug in ("chat", "responses", "claude", "bedrock")
    ]
    key: dict[str, Any] = {"name": "team-a", "key": KEY}
    if day is not None:
        key["budget_usd_per_day"] = day
    if month is not None:
        key["budget_usd_per_month"] = month
    doc = {"server": server, "models": models, "client_keys": [key], "prices": {"priced": PRICE}}
    return parse_config(doc, "budgets.yaml", {})


def _midnight() -> str:
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return f"{tomorrow:%Y-%m-%d}T00:00:00Z"


def _refusal(dialect: str, status: int, headers: dict[str, str], body: bytes) -> str:
    """The message of a budget refusal, after checking its dialect's shape."""
    assert status == 429
    wait = int(headers["retry-after"])
    assert 0 < wait <= 31 * 86400
    doc = orjson.loads(body)
    if dialect == "claude":
        assert doc["type"] == "error" and doc["error"]["type"] == "rate_limit_error"
        return str(doc["error"]["message"])
    if dialect == "bedrock":
        assert headers["x-amzn-errortype"] == "ThrottlingException"
        return str(doc["message"])
    assert doc["error"]["type"] == "insufficient_quota" and doc["error"]["code"] == "insufficient_quota"
    return str(doc["error"]["message"])


def _post(port: int, dialect: str, stream: bool = False) -> tuple[int, dict[str, str], bytes]:
    import http.client

    slug = dialect.replace("openai-", "")
    path, body = ask(dialect, f"/{slug}", f"m-{slug}", stream=stream)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=orjson.dumps(body), headers={"content-type": "application/json", **HEADERS})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("dialect", ["openai-chat", "openai-responses", "claude", "bedrock"])
def test_a_spent_daily_budget_stops_the_next_request_in_the_clients_dialect(tmp_path: Path, dialect: str) -> None:
    db = tmp_path / "usage.db"
    with running_proxy(_config({"usage_store": f"sqlite:///{db}"})) as proxy:
        status, _, body = _post(proxy.port, dialect)
        assert status == 200, body  # under budget (0 spent): it runs, and spends 0.009 of 0.001
        status, headers, body = _post(proxy.port, dialect)
        message = _refusal(dialect, status, headers, body)
    assert message == (
        f"the client key 'team-a' has used its daily budget of $0.001 (spent $0.0090); it resets at {_midnight()}"
    )
    assert [(r["status"], r["client"], r["cost_usd"]) for r in rows(db)] == [
        (200, "team-a", 0.009),
        (429, "team-a", 0.0),
    ]


def test_a_monthly_budget_names_the_next_month(tmp_path: Path) -> None:
    with running_proxy(_config({"usage_store": "none"}, day=None, month=0.015)) as proxy:
        assert _post(proxy.port, "claude", stream=True)[0] == 200  # streamed answers count too
        assert _post(proxy.port, "claude")[0] == 200  # 0.009 < 0.015
        status, headers, body = _post(proxy.port, "claude")
    message = _refusal("claude", status, headers, body)
    first = dt.datetime.now(dt.UTC).date().replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    assert message == (
        "the client key 'team-a' has used its monthly budget of $0.015 (spent $0.0180); "
        f"it resets at {following:%Y-%m-%d}T00:00:00Z"
    )


def test_a_restart_keeps_the_days_spend_from_the_ledger(tmp_path: Path) -> None:
    config = _config({"usage_store": f"sqlite:///{tmp_path / 'usage.db'}"}, day=0.015)
    with running_proxy(config) as proxy:
        assert _post(proxy.port, "claude")[0] == 200
    with running_proxy(config) as proxy:  # a new process would start from the same ledger
        assert _post(proxy.port, "claude")[0] == 200  # 0.009 (seeded) < 0.015
        status, headers, body = _post(proxy.port, "claude")
        assert "spent $0.0180" in _refusal("claude", status, headers, body)


def _spent_today(redis: RedisServer) -> bytes:
    """The day's counter of team-a in Redis (the bulk reply's value line)."""
    import socket

    key = f"llmp-budget:team-a:d:{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as conn:
        conn.sendall(f"GET {key}\r\n".encode())
        reply = conn.makefile("rb")
        return b"" if reply.readline().startswith(b"$-1") else reply.readline().rstrip(b"\r\n")


def _until(redis: RedisServer, value: bytes) -> None:
    """Wait for a replica's charge to land (it is sent the moment the response ended: a Redis round trip)."""
    deadline = time.monotonic() + 5
    while _spent_today(redis) != value:
        assert time.monotonic() < deadline, _spent_today(redis)
        time.sleep(0.005)


def test_replicas_share_budgets_through_redis(redis_url: str, redis_server: RedisServer) -> None:
    server = {"usage_store": "none", "state_store": redis_url}
    with running_proxy(_config(server, day=0.015)) as one, running_proxy(_config(server, day=0.015)) as two:
        assert _post(one.port, "openai-chat")[0] == 200
        _until(redis_server, b"0.009")
        assert _post(two.port, "openai-chat")[0] == 200  # 0.009 < 0.015, counted by the other replica
        _until(redis_server, b"0.018")
        status, headers, body = _post(one.port, "openai-chat")
        assert "spent $0.0180" in _refusal("openai-chat", status, headers, body)
        status, headers, body = _post(two.port, "claude")
        assert "spent $0.0180" in _refusal("claude", status, headers, body)
    day = f"{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    assert _spent_today(redis_server) == b"0.018"  # refusals cost nothing
    ttl = int(redis_server.command("TTL", f"llmp-budget:team-a:d:{day}").lstrip(b":"))
    assert 3600 < ttl <= 86400 + 3600
    assert re.fullmatch(rb":\d+", redis_server.command("TTL", f"llmp-budget:team-a:m:{day[:7]}"))
