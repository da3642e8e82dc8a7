"""``python -m bench.failover``: what a retry or a fallback adds to one request, median of N, on loopback.

Scenarios (each against a real proxy and fake upstreams in this process): the first backend answers at
once (baseline); it answers 503 and the pool's second backend serves; its port is closed and the second
serves; a Claude primary sends ``overloaded_error`` as the first stream event and an OpenAI Chat fallback
serves the Claude client. Prints one line per scenario: median and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from tests.servers import Recorded, RecordingUpstream, Reply, make_config, running_proxy, running_upstream

CLAUDE_OK = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "up",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
CHAT_STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
OVERLOADED_EVENT = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


async def _ok(recorded: Recorded, reply: Reply) -> None:
    await reply.json(200, orjson.dumps(CLAUDE_OK))


async def _unavailable(recorded: Recorded, reply: Reply) -> None:
    await reply.json(503, b'{"type":"error","error":{"type":"api_error","message":"down"}}')


async def _overloaded_stream(recorded: Recorded, reply: Reply) -> None:
    await reply.start(200, [("content-type", "text/event-stream")])
    await reply.chunk(OVERLOADED_EVENT, more=False)


async def _chat_stream(recorded: Recorded, reply: Reply) -> None:
    await reply.start(200, [("content-type", "text/event-stream")])
    await reply.chunk(CHAT_STREAM, more=False)


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _timed(port: int, path: str, body: dict[str, Any], runs: int) -> list[float]:
    times: list[float] = []
    payload = orjson.dumps(body)
    for _ in range(runs):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.connect()
        assert conn.sock is not None
        # http.client writes headers and body separately: without this, Nagle + delayed ACK add 40 ms.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        conn.request("POST", path, body=payload, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        times.append((time.perf_counter() - started) * 1000)
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}")
    return times


def _pool(first: str, second: str, **extra: Any) -> dict[str, Any]:
    return {
        "frontend_model_name": "m",
        "frontend_base_url": "/p",
        "retries": 1,
        "cooldown": {"failures": 1000},  # measure the retry itself, not the cooldown that would skip it
        "backends": [
            {"name": "first", "backend_base_url": first, "weight": 1e9, **extra},
            {"name": "second", "backend_base_url": second, "weight": 1e-9, **extra},
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args(argv).runs
    message = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    ok, down = RecordingUpstream(_ok), RecordingUpstream(_unavailable)
    overloaded, chat = RecordingUpstream(_overloaded_stream), RecordingUpstream(_chat_stream)
    with (
        running_upstream(ok) as ok_server,
        running_upstream(down) as down_server,
        running_upstream(overloaded) as overloaded_server,
        running_upstream(chat) as chat_server,
    ):
        scenarios: dict[str, Callable[[], dict[str, Any]]] = {
            "first backend answers": lambda: _pool(ok_server.url, ok_server.url),
            "503, then the next backend": lambda: _pool(down_server.url, ok_server.url),
            "refused, then the next backend": lambda: _pool(_closed_url(), ok_server.url),
            "overloaded first event, then an openai-chat fallback": lambda: {
                "frontend_model_name": "m",
                "frontend_base_url": "/p",
                "frontend_dialect": "claude",
                "backend_dialect": "claude",
                "backend_base_url": overloaded_server.url,
                "retries": 1,
                "cooldown": {"failures": 1000},
                "fallbacks": [{"backend_dialect": "openai-chat", "backend_base_url": chat_server.url}],
            },
        }
        for name, entry in scenarios.items():
            body = {**message, "stream": True} if "fallback" in name else message
            with running_proxy(make_config([entry()])) as proxy:
                _timed(proxy.port, "/p/v1/messages", body, 20)  # warm-up: connections, imports
                times = sorted(_timed(proxy.port, "/p/v1/messages", body, runs))
            p90 = times[int(len(times) * 0.9) - 1]
            print(f"{name:<55} median {statistics.median(times):6.2f} ms   p90 {p90:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
