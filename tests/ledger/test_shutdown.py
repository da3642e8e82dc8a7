"""SIGTERM flushes the ledger: a real proxy process serves N requests, is told to stop, and the database then
holds exactly N records (the store opens in the background after the start, so records are still queued)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.ledger.clients import ask, post
from tests.ledger.test_postgres import _summary
from tests.postgres_server import PostgresServer
from tests.servers import ends_on_sigterm
from tests.test_cli import free_port, wait_healthy

N = 60


def _serve_then_stop(tmp_path: Path, url: str) -> str:
    port = free_port()
    models = [{"frontend_model_name": "m", "frontend_base_url": "/c", "backend_base_url": "mock://"}]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"port": port, "usage_store": url}, "models": models}))
    log_path = tmp_path / "proxy.log"
    path, body = ask("claude", "/c", "m", stream=False)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llm_proxy", "--config", str(config)], stderr=log, stdout=log)
        with ends_on_sigterm(proc):
            wait_healthy(port, proc)
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda _: post(port, path, body)[0], range(N)))
            assert statuses == [200] * N
    text = log_path.read_text()
    assert "not written" not in text and "Traceback" not in text, text
    return text


def test_sigterm_writes_every_queued_record_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    _serve_then_stop(tmp_path, url)
    assert _summary(url, ())[0]["requests"] == N


@pytest.mark.usefixtures("postgres")
def test_sigterm_writes_every_queued_record_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    _serve_then_stop(tmp_path, postgres.url)
    assert _summary(postgres.url, ())[0]["requests"] == N
