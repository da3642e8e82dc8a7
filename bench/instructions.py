"""``python -m bench.instructions [--contenders A,B] [--kind chat] [--requests 100,400]``: CPU per request as
instructions, which other work on the machine cannot change.

Each contender runs under ``valgrind --tool=callgrind`` (children traced: granian's workers, nginx's) behind the
fast upstream, serves a warm-up, then N requests from 8 concurrent clients, and is stopped; the instructions
of all its processes are summed from callgrind's output. Doing this for two values of N and dividing the
difference by the difference of N cancels start-up and shutdown: what remains is instructions per request
(per streamed delta for streamed kinds). Slow (valgrind runs code ~50× slower), exact, and load-independent.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.contenders import CONTENDERS, Endpoint, Upstreams
from bench.processes import Layout, Proc, Processes, free_port, stop, wait_ready
from bench.scenarios import stream_body
from bench.settings import FULL

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


class _Valgrind(Processes):
    """Starts every process under callgrind, one output file per process id."""

    out_dir: Path = Path()

    def start(
        self, name: str, argv: Sequence[str], cpu: int, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Proc:
        wrapped = [
            "valgrind", "--tool=callgrind", "--trace-children=yes", "--collect-jumps=no",
            f"--callgrind-out-file={self.out_dir}/{name}.%p.out", *argv,
        ]  # fmt: skip
        return super().start(name, wrapped, cpu, env, cwd)


async def _send(ep: Endpoint, body: bytes, count: int, concurrency: int = 8) -> int:
    """``count`` requests from ``concurrency`` clients; returns how many succeeded."""
    ok = 0
    left = count

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal ok, left
        while left > 0:
            left -= 1
            async with session.post(ep.url, data=body, headers=dict(ep.headers)) as resp:
                await resp.read()
                ok += resp.status == 200

    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return ok


def measure(name: str, kind: str, count: int, up: Upstreams, layout: Layout, work: Path) -> int:
    """Instructions executed by contender ``name`` over its whole life, serving ``count`` requests of ``kind``."""
    out_dir = work / f"{name}-{count}"
    out_dir.mkdir(parents=True)
    contender = CONTENDERS[name]()
    procs = _Valgrind(work / "logs")
    procs.out_dir = out_dir
    with procs:
        running = contender.start(procs, work, up, layout, timeout=600)
        ep = contender.endpoint(running, up, kind)
        assert ep is not None and running.proc is not None
        body = stream_body(kind, ep.model) if kind != "chat" else _plain(ep.model)
        asyncio.run(_send(ep, body, 40))  # warm-up: connections, lazy imports, caches
        done = asyncio.run(_send(ep, body, count))
        if done != count:
            raise RuntimeError(f"{name}: {count - done} of {count} requests failed")
        stop(running.proc, grace=120)
    return sum(int(m) for f in out_dir.glob("*.out") for m in _TOTALS.findall(f.read_bytes()))


def _plain(model: str) -> bytes:
    from bench.payloads import chat_request

    return chat_request(model)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--contenders", default="llm-proxy,llm-proxy-rsgi,minimal-asgi,minimal-rsgi")
    parser.add_argument("--kind", default="chat")
    parser.add_argument("--requests", default="100,400", help="the two request counts (N1,N2)")
    parser.add_argument("--out", type=Path, help="also write the table here (e.g. docs/profiles/instructions-chat.md)")
    options = parser.parse_args(argv)
    low, high = (int(n) for n in options.requests.split(","))
    layout = Layout.detect()
    per_unit = FULL.deltas_per_stream if options.kind != "chat" else 1
    unit = "delta" if per_unit > 1 else "request"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp) / "logs") as procs:
        work = Path(tmp)
        port = free_port()
        fast = procs.start(
            "fast-upstream", [sys.executable, "-m", "bench.fast_upstream", "--port", str(port)], layout.load_cpu
        )
        wait_ready(fast, f"http://127.0.0.1:{port}/healthz", 20)
        up = Upstreams(fast_port=port, mock_port=port, slow_port=port)
        for name in options.contenders.split(","):
            counts = {n: measure(name, options.kind, n, up, layout, work) for n in (low, high)}
            results[name] = (counts[high] - counts[low]) / (high - low) / per_unit
            print(f"{name}: {results[name]:,.0f} instructions per {unit} ({options.kind})", flush=True)
    base = min(results.values())
    lines = [
        f"callgrind, instructions per {unit} of `{options.kind}` (all the contender's processes; (I(N2) − I(N1)) ÷ "
        f"(N2 − N1), N = {low}, {high}; `python -m bench.instructions --kind {options.kind}`)",
        "",
        f"| contender | instructions per {unit} | vs cheapest |",
        "|---|---|---|",
        *(f"| {CONTENDERS[n].label} | {v:,.0f} | {v / base:.2f}× |" for n, v in results.items()),
    ]
    print("\n".join(lines))
    if options.out is not None:
        options.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
