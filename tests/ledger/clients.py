"""Requests of each dialect for the ledger tests: the path, the body, and the usage the client was told."""

from __future__ import annotations

import http.client
import sqlite3
from pathlib import Path
from typing import Any

import orjson

DIALECT_NAMES = ("openai-chat", "openai-responses", "claude", "bedrock")


def post(port: int, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", path, body=orjson.dumps(body), headers={"content-type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def ask(dialect: str, prefix: str, model: str, *, stream: bool) -> tuple[str, dict[str, Any]]:
    """The path and body of a one-message request in ``dialect``."""
    text = "hi there"
    if dialect == "openai-chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return f"{prefix}/v1/chat/completions", body
    if dialect == "openai-responses":
        return f"{prefix}/v1/responses", {"model": model, "input": text, "stream": stream}
    if dialect == "claude":
        messages = [{"role": "user", "content": text}]
        return f"{prefix}/v1/messages", {"model": model, "max_tokens": 50, "messages": messages, "stream": stream}
    action = "invoke-with-response-stream" if stream else "invoke"
    messages = [{"role": "user", "content": text}]
    return f"{prefix}/model/{model}/{action}", {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": messages,
    }


def told(dialect: str, body: bytes) -> tuple[int, int]:
    """(input, output) tokens a non-streamed answer reports to its client (input without cached tokens)."""
    usage = orjson.loads(body)["usage"]
    if dialect == "openai-chat":
        return usage["prompt_tokens"], usage["completion_tokens"]
    return usage["input_tokens"], usage["output_tokens"]


def rows(db: Path) -> list[dict[str, Any]]:
    """Every ledger row of a SQLite file, oldest first, without ``id``."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        found = [dict(row) for row in conn.execute("SELECT * FROM usage_records ORDER BY id")]
    for row in found:
        row.pop("id")
    return found
