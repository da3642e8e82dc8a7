"""A scripted, recording upstream for the end-to-end suite: fixed replies in order, every request written down.

The real clients (Claude Code, Codex) talk to the proxy, and the proxy talks to this server. It answers
the n-th POST with the n-th scripted reply (typically a realistic SSE stream in the backend's dialect,
sent event by event), so a test knows exactly what the proxy had to translate, and it appends every
request it sees (method, path, query, headers, parsed JSON body) as one JSON line to the record file,
so a test can assert what the proxy sent: how many requests per turn, ``stream:true``, the tool result
on the second turn, a replayed reasoning item.

A POST beyond the script is answered with a 400 in a shape both OpenAI and Anthropic clients read
(``{"type":"error","error":{...}}``): 4xx are not retried by the clients, so an unexpected request (such
as Claude Code's silent non-streaming retry after a broken stream) shows up in the record and the run
ends quickly instead of retrying with backoff. ``GET /healthz`` answers 200 and is not recorded.

Run inside the test's network namespace (stdlib + uvicorn + orjson only, so it runs as a file)::

    python tests/e2e/upstream.py --port 18001 --script script.json --record requests.jsonl
    python tests/e2e/upstream.py wait PID1 http://127.0.0.1:18001/healthz PID2 http://127.0.0.1:18002/healthz
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One reply: a status, a content type and the body, sent as these chunks in order."""

    status: int
    content_type: str
    chunks: list[bytes]
    chunk_delay: float = 0.0
    """Seconds between chunks (0: as fast as the connection takes them)."""

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ScriptedReply:
        return cls(
            status=int(doc["status"]),
            content_type=str(doc["content_type"]),
            chunks=[str(c).encode() for c in doc["chunks"]],
            chunk_delay=float(doc.get("chunk_delay", 0.0)),
        )


def unscripted_reply(index: int) -> ScriptedReply:
    message = f"e2e upstream: no scripted reply for POST #{index + 1} (see the record file)"
    body = orjson.dumps(
        {"type": "error", "error": {"type": "invalid_request_error", "code": "e2e_unscripted", "message": message}}
    )
    return ScriptedReply(400, "application/json", [body])


@dataclass
class RecordingApp:
    """The ASGI app: records each request to ``record`` and answers POSTs from ``script`` in order."""

    script: list[ScriptedReply]
    record: Path
    posts: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await _send(send, ScriptedReply(200, "text/plain", [b"OK"]))
            return
        body = await _read_body(receive)
        async with self.lock:  # the order of record lines and of replies is the order of arrival
            index = self.posts if scope["method"] == "POST" else -1
            if index >= 0:
                self.posts += 1
            self._write(scope, body, index)
        if index < 0:
            await _send(send, ScriptedReply(404, "text/plain", [b"not found"]))
            return
        reply = self.script[index] if index < len(self.script) else unscripted_reply(index)
        await _send(send, reply)

    def _write(self, scope: Scope, body: bytes, index: int) -> None:
        try:
            parsed: Any = orjson.loads(body) if body else None
            raw = None
        except orjson.JSONDecodeError:
            parsed, raw = None, body.decode("utf-8", "replace")
        line = {
            "index": index,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "headers": {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            "body": parsed,
            "raw": raw,
        }
        with self.record.open("ab") as f:
            f.write(orjson.dumps(line) + b"\n")


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send(send: Any, reply: ScriptedReply) -> None:
    headers = [(b"content-type", reply.content_type.encode())]
    if reply.content_type == "text/event-stream":
        headers.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    for chunk in reply.chunks:
        if reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (an exited child that its shell has not reaped yet is a zombie: dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_ready(servers: list[tuple[int, str]], timeout: float) -> bool:
    """Poll each server's URL until it answers 200; False when its process exits or ``timeout`` s pass first."""
    deadline = time.monotonic() + timeout
    for pid, url in servers:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if not _alive(pid):
                print(f"e2e: the server for {url} (pid {pid}) exited during startup", file=sys.stderr)
                return False
            if time.monotonic() > deadline:
                print(f"e2e: {url} not ready after {timeout} s", file=sys.stderr)
                return False
            time.sleep(0.05)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "wait":  # wait PID URL [PID URL ...]
        pairs = [(int(args[i]), args[i + 1]) for i in range(1, len(args) - 1, 2)]
        return 0 if wait_ready(pairs, timeout=20.0) else 1
    parser = argparse.ArgumentParser(description="scripted recording upstream for the e2e suite")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", type=Path, required=True, help="JSON list of replies")
    parser.add_argument("--record", type=Path, required=True, help="JSON lines file, one line per request")
    ns = parser.parse_args(args)
    script = [ScriptedReply.from_json(doc) for doc in orjson.loads(ns.script.read_bytes())]
    ns.record.write_bytes(b"")  # a fresh record per run (run.sh may be replayed by hand)
    app = RecordingApp(script=script, record=ns.record)
    uvicorn.run(app, host=ns.host, port=ns.port, log_level="warning", lifespan="on", ws="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
