"""One exact ledger record per request: every dialect, both modes, streamed or not, errors too (SQLite)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.ledger.clients import DIALECT_NAMES, ask, post, rows, told
from tests.servers import make_config, running_proxy

RATES = {"input": 2.0, "output": 10.0}
"""``prices:`` of the backend models here (USD per million): the cost is exact arithmetic."""


def _routes() -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for dialect in DIALECT_NAMES:
        slug = dialect.replace("openai-", "")
        # proxy mode: the path's dialect goes through unchanged
        routes.append(
            {
                "frontend_model_name": f"proxy-{slug}",
                "frontend_base_url": f"/p-{slug}",
                "backend_base_url": "mock://",
                "backend_model_name": f"bm-proxy-{slug}",
            }
        )
        # translation mode: to Claude (to OpenAI Chat for Claude clients)
        back = "openai-chat" if dialect == "claude" else "claude"
        routes.append(
            {
                "frontend_model_name": f"tr-{slug}",
                "frontend_base_url": f"/t-{slug}",
                "frontend_dialect": dialect,
                "backend_dialect": back,
                "backend_base_url": "mock://",
                "backend_model_name": f"bm-tr-{slug}",
            }
        )
    return routes


def _config(db: Path) -> Any:
    config = make_config(_routes(), {"usage_store": f"sqlite:///{db}"})
    prices = {r["backend_model_name"]: _rates() for r in _routes()}
    return type(config)(**{**{f: getattr(config, f) for f in config.__dataclass_fields__}, "prices": prices})


def _rates() -> Any:
    from llm_proxy.config import Rates

    return Rates(**RATES)


def test_each_request_is_one_exact_record_in_every_dialect_mode_and_stream(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    asked: list[tuple[str, str, bool, tuple[int, int]]] = []
    started = time.time()
    with running_proxy(_config(db)) as proxy:
        for dialect in DIALECT_NAMES:
            slug = dialect.replace("openai-", "")
            for mode in ("proxy", "tr"):
                prefix, model = f"/{mode[0]}-{slug}", f"{mode}-{slug}"
                path, body = ask(dialect, prefix, model, stream=False)
                status, answer = post(proxy.port, path, body)
                assert status == 200, answer
                tokens = told(dialect, answer)
                asked.append((dialect, mode, False, tokens))
                path, body = ask(dialect, prefix, model, stream=True)
                status, answer = post(proxy.port, path, body)
                assert status == 200, answer
                asked.append((dialect, mode, True, tokens))  # the mock's stream reports the same usage
    ended = time.time()
    found = rows(db)
    assert len(found) == len(asked) == 16
    for row, (dialect, mode, stream, (input_tokens, output_tokens)) in zip(found, asked, strict=True):
        slug = dialect.replace("openai-", "")
        back = dialect if mode == "proxy" else ("openai-chat" if dialect == "claude" else "claude")
        assert started <= row["time"] <= ended
        assert len(row["request_id"]) == 32
        assert 0 < row["duration"] < 5
        if stream:
            assert row["ttft"] is not None and 0 < row["ttft"] <= row["duration"]
        else:
            assert row["ttft"] is None
        assert input_tokens > 0 and output_tokens > 0
        expected = {
            "client": "-",
            "prefix": f"/{mode[0]}-{slug}",
            "frontend_model": f"{mode}-{slug}",
            "backend": "0",
            "backend_model": f"bm-{mode}-{slug}",
            "frontend_dialect": dialect,
            "backend_dialect": back,
            "status": 200,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": (input_tokens * RATES["input"] + output_tokens * RATES["output"]) / 1_000_000,
        }
        assert {k: row[k] for k in expected} == expected, (dialect, mode, stream)


def test_errors_and_rejections_are_recorded_with_no_tokens(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    with running_proxy(_config(db)) as proxy:
        status, _ = post(proxy.port, "/p-claude/v1/messages", {"model": "nope", "max_tokens": 5, "messages": []})
        assert status == 404
        status, _ = post(proxy.port, "/t-chat/v1/chat/completions", {"model": "tr-chat", "messages": "not a list"})
        assert status == 400
    found = rows(db)
    assert [(r["status"], r["frontend_model"], r["frontend_dialect"]) for r in found] == [
        (404, "-", "claude"),
        (400, "tr-chat", "openai-chat"),
    ]
    for row in found:
        tokens = [row[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")]
        assert tokens == [0, 0, 0, 0]
        assert row["cost_usd"] == 0.0
        assert row["backend"] == "-"


@pytest.mark.parametrize("store", ["none"])
def test_usage_store_none_writes_nothing(tmp_path: Path, store: str) -> None:
    config = make_config(_routes(), {"usage_store": store})
    assert config.server.usage_store is None
    with running_proxy(config) as proxy:
        path, body = ask("claude", "/p-claude", "proxy-claude", stream=False)
        assert post(proxy.port, path, body)[0] == 200
    assert list(tmp_path.iterdir()) == []
