"""A proxy served in this process, scripted traffic through it, then what the process loaded and which child
processes it started, as JSON on stdout (``test_lean`` runs this in a fresh interpreter).

``python -m tests.ledger.lean_probe SERVER_JSON``: SERVER_JSON is the config's ``server:`` block. The routes are
``ROUTES``; each is asked twice (Claude Messages on ``/c``, OpenAI Chat on ``/o``), then the server is stopped
(its lifespan shutdown flushes the ledger) and ``{"loaded": [...], "launched": [...]}`` printed: the ``HEAVY``
modules in ``sys.modules``, and the module each child process ran (``python -m MODULE``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

HEAVY = ("sqlalchemy", "alembic", "aiosqlite", "genai_prices")
ROUTES: list[dict[str, Any]] = [
    # translation mode: the backend dialect is known from the config, so its price is looked up at start
    {
        "frontend_model_name": "sonnet",
        "frontend_base_url": "/o",
        "frontend_dialect": "openai-chat",
        "backend_dialect": "claude",
        "backend_base_url": "mock://",
        "backend_model_name": "claude-sonnet-4-5",
    },
    # proxy mode: the path's dialect (Claude Messages) names the provider, looked up with the writer's batch
    {
        "frontend_model_name": "haiku",
        "frontend_base_url": "/c",
        "backend_base_url": "mock://",
        "backend_model_name": "claude-3-5-haiku-20241022",
    },
]
launched: list[str] = []


def _record_children() -> None:
    original = asyncio.create_subprocess_exec

    async def recording(program: Any, *args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        launched.append(str(args[1]) if len(args) > 1 and args[0] == "-m" else str(program))
        return await original(program, *args, **kwargs)

    asyncio.create_subprocess_exec = recording


def main(server: dict[str, Any]) -> None:
    _record_children()
    from tests.ledger.clients import ask, post
    from tests.servers import make_config, running_proxy

    with running_proxy(make_config(ROUTES, server)) as proxy:
        for dialect, prefix, model in (("openai-chat", "/o", "sonnet"), ("claude", "/c", "haiku")):
            for stream in (False, True):
                path, body = ask(dialect, prefix, model, stream=stream)
                status, answer = post(proxy.port, path, body)
                assert status == 200, answer
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
    sys.stdout.buffer.write(orjson.dumps({"loaded": loaded, "launched": launched}))


if __name__ == "__main__":
    main(orjson.loads(sys.argv[1]))
