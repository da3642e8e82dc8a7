"""The dashboard in a real browser against a real proxy process that served scripted traffic.

The page tests (``tests/test_dashboard_page.py``) check every number against records the test invents; this one
checks the whole path: requests through the proxy, the ledger writing them, the admin routes serving the page and
the records, and headless Chromium drawing every chart from them.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from playwright.sync_api import Browser

from tests.browser import watched_page
from tests.ledger.clients import ask, get, post
from tests.test_cli import free_port, wait_healthy

ADMIN_KEY = "admin-secret-for-the-dashboard"
CLIENT_KEYS = {"alice": "sk-alice-dashboard", "bob": "sk-bob-dashboard"}
MODELS = {"claude-sonnet-4-5": "claude", "gpt-4o-mini": "openai-chat"}
"""Frontend model (also the backend model, priced by genai-prices) and the dialect its mock backend speaks."""
CHARTS = (
    "requests-by-model",
    "tokens-by-model",
    "cost-by-model",
    "requests-by-client",
    "ttft-by-model",
    "duration-by-model",
    "errors-by-backend",
)


def _config(tmp_path: Path, port: int) -> Path:
    models = [
        {
            "frontend_model_name": model,
            "frontend_base_url": "/api-" + dialect,
            "frontend_dialect": "claude",
            "backend_dialect": dialect,
            "backend_base_url": "mock://",
            "require_client_key": True,
        }
        for model, dialect in MODELS.items()
    ]
    keys = [{"name": name, "key": "${DASH_KEY_" + name.upper() + "}"} for name in CLIENT_KEYS]
    server = {
        "port": port,
        "usage_store": f"sqlite:///{tmp_path / 'usage.db'}",
        "admin_key": "${DASH_ADMIN_KEY}",
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": server, "models": models, "client_keys": keys}))
    return config


def _traffic(port: int) -> int:
    """Per client and model: two answers, one stream, one upstream error. Returns the number of requests."""
    sent = 0
    for client, key in CLIENT_KEYS.items():
        for model, dialect in MODELS.items():
            prefix = "/api-" + dialect
            for stream in (False, False, True):
                path, body = ask("claude", prefix, model, stream=stream)
                status, _ = post(port, path, body, {"x-llm-proxy-key": key})
                assert status == 200, (client, model, stream)
                sent += 1
            path, body = ask("claude", prefix, model, stream=False)
            body["messages"][0]["content"] = "[[mock:error 400]]"
            status, _ = post(port, path, body, {"x-llm-proxy-key": key})
            assert status == 400
            sent += 1
    return sent


def _records(port: int) -> list[dict[str, Any]]:
    auth = "Basic " + base64.b64encode(f"admin:{ADMIN_KEY}".encode()).decode()
    status, _, body = get(port, "/api/usage/records?since=1h", {"authorization": auth})
    assert status == 200, body
    records: list[dict[str, Any]] = orjson.loads(body)["records"]
    return records


def test_the_dashboard_draws_what_the_proxy_served(chromium: Browser, tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    env = {**os.environ, "DASH_ADMIN_KEY": ADMIN_KEY}
    env.update({"DASH_KEY_" + name.upper(): key for name, key in CLIENT_KEYS.items()})
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_proxy", "--config", str(config)], stdout=log, stderr=log, env=env
        )
        try:
            wait_healthy(port, proc)
            sent = _traffic(port)
            deadline = time.monotonic() + 20
            while len(records := _records(port)) < sent and time.monotonic() < deadline:
                time.sleep(0.2)  # the writer batches up to a second; the store opens after the start
            assert len(records) == sent
            assert {r["client"] for r in records} == set(CLIENT_KEYS)
            assert sum(1 for r in records if r["status"] == 400) == len(CLIENT_KEYS) * len(MODELS)
            assert all(r["cost_usd"] is not None and r["cost_usd"] > 0 for r in records if r["status"] == 200)

            origin = f"http://127.0.0.1:{port}"
            with watched_page(chromium, origin, password=ADMIN_KEY) as watched:
                page = watched.page
                page.goto(origin + "/dashboard#1h")
                page.wait_for_function(
                    "() => (window.dashboardState && window.dashboardState.loads >= 1)"
                    " || document.body.dataset.status === 'error'",
                    timeout=15000,
                )
                assert page.locator("body").get_attribute("data-status") == "ready", page.locator(
                    "#status"
                ).inner_text()
                charts = page.evaluate("window.dashboardState.charts")
                for name in CHARTS:
                    points = int(page.locator(f'[data-chart="{name}"]').get_attribute("data-points") or "0")
                    assert points > 0, name
                    assert page.locator(f'[data-chart="{name}"] canvas').count() >= 1, name
                totals = {s["label"]: s["total"] for s in charts["requests-by-model"]["series"]}
                assert totals == {model: sent // len(MODELS) for model in MODELS}
                clients = {s["label"]: s["total"] for s in charts["requests-by-client"]["series"]}
                assert clients == {name: sent // len(CLIENT_KEYS) for name in CLIENT_KEYS}
                requests_tile = page.locator('[data-tile="requests"] [data-value]').inner_text()
                assert requests_tile.replace(",", "") == str(sent)
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                watched.assert_clean()
        finally:
            proc.terminate()
            proc.wait(30)
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert ADMIN_KEY not in text and all(key not in text for key in CLIENT_KEYS.values())
