"""Load generation: wrk for plain JSON POSTs, an asyncio + aiohttp client for streams.

wrk is the load generator of record for scenario 1 (a Python client cannot saturate a proxy from one
core). When wrk is missing, ``python_load`` drives the same closed-loop load with aiohttp, and the
report says so. ``stream_load`` records, per stream, the time to first byte and to completion, and
checks that each stream ended with its dialect's final event.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.contenders import Endpoint
from bench.payloads import STREAM_END

_WRK_LUA = """\
-- POST the body file named by BENCH_BODY, with the headers in BENCH_HEADERS ("name: value" lines)
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end
"""


@dataclass(frozen=True, slots=True)
class PlainResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    """Non-2xx answers plus socket errors and timeouts."""


TAIL = 16384
"""Bytes kept from a stream's end to find its final event (Responses' final event carries the whole reply)."""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(ep: Endpoint, body: Path, concurrency: int, duration: float, cpu: int, work: Path) -> PlainResult:
    script = work / "post.lua"
    script.write_text(_WRK_LUA)
    env = {"BENCH_BODY": str(body), "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in ep.headers)}
    argv = [
        "taskset", "-c", str(cpu), "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
        "--timeout", "10s", "--latency", "-s", str(script), ep.url,
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, timeout=duration + 30, env={**os.environ, **env})
    text = out.stdout.decode()
    if out.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed ({out.returncode}): {text[-300:]} {out.stderr.decode()[-300:]}")
    return parse_wrk(text)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> PlainResult:
    """The figures of one ``wrk --latency`` report."""
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", text))
    requests = int(_find(r"(\d+) requests in", text))
    p50 = _ms(_find(r"\s50%\s+(\S+)", text))
    p99 = _ms(_find(r"\s99%\s+(\S+)", text))
    errors = int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", text, "0"))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return PlainResult(rps=rps, p50_ms=p50, p99_ms=p99, requests=requests, errors=errors)


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise ValueError(f"wrk output lacks {pattern!r}")
        return default
    return match.group(1)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


async def python_load(ep: Endpoint, body: bytes, concurrency: int, duration: float) -> PlainResult:
    """The wrk run without wrk: ``concurrency`` connections, each sending back to back for ``duration``."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    headers = dict(ep.headers)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                async with session.post(ep.url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1

    began = time.perf_counter()
    async with _session(concurrency) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return PlainResult(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        requests=len(latencies) + errors,
        errors=errors,
    )


@dataclass
class StreamResult:
    ok: int = 0
    failed: int = 0
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    sse_events: int = 0
    elapsed: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


async def _one_stream(session: aiohttp.ClientSession, ep: Endpoint, body: bytes, out: StreamResult) -> None:
    end_marker = STREAM_END[ep.dialect]
    start = time.perf_counter()
    try:
        async with session.post(ep.url, data=body, headers=dict(ep.headers)) as resp:
            if resp.status != 200:
                await resp.read()
                out.fail(f"HTTP {resp.status}")
                return
            first: float | None = None
            tail = b""
            events = 0
            async for chunk in resp.content.iter_any():
                if first is None:
                    first = time.perf_counter()
                # one byte of the previous chunk is enough to see a separator split across chunks
                events += (tail[-1:] + chunk).count(b"\n\n")
                tail = (tail + chunk)[-TAIL:]
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.fail(type(exc).__name__)
        return
    if first is None or end_marker not in tail:
        out.fail("stream did not complete")
        return
    done = time.perf_counter()
    out.ok += 1
    out.sse_events += events
    out.ttfb_ms.append((first - start) * 1000)
    out.total_ms.append((done - start) * 1000)


async def stream_load(
    ep: Endpoint, body: bytes, concurrency: int, *, duration: float | None = None, deadline: float = 600.0
) -> StreamResult:
    """Streams from ``concurrency`` workers: back to back for ``duration`` seconds, or one each when None.

    Nothing runs past ``deadline`` seconds: streams still open then count as failed ("timeout").
    """
    out = StreamResult()
    began = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            await _one_stream(session, ep, body, out)
            if duration is None or time.perf_counter() - began >= duration:
                return

    async with _session(concurrency) as session:
        tasks = [asyncio.ensure_future(worker(session)) for _ in range(concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            # each unfinished worker was cut in the middle of exactly one stream
            for _ in pending:
                out.fail("timeout")
    out.elapsed = time.perf_counter() - began
    return out
