"""``python -m bench.instructions [--contenders A,B] [--kind chat] [--requests 100,400]``: CPU per request as
instructions, which other work on the machine cannot change.

Each contender runs under ``valgrind --tool=callgrind`` (children traced: granian's workers, nginx's) behind the
fast upstream, serves a warm-up, then N requests from ``--concurrency`` clients (8; the number of requests in
flight changes how often the garbage collector runs), and is stopped; the instructions of all its serving
processes are summed from callgrind's output (each file's ``totals:`` once; the usage ledger's start-up children
are shown apart). Doing this for two values of N and dividing the difference by the difference of N cancels
start-up and shutdown: what remains is instructions per request (per streamed delta for streamed kinds). Slow
(valgrind runs code ~50× slower), exact, and load-independent. ``--keep DIR`` keeps callgrind's files for
``callgrind_annotate``.

Before this tool counted each file's totals once (branch 19-proc), the figures it printed were twice the real
ones, plus whatever the ledger's start-up children had done.
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

_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)
_SUMMARY = re.compile(rb"^summary:\s+(\d+)", re.MULTILINE)
_COMMAND = re.compile(rb"^cmd:\s+(.*)$", re.MULTILINE)
START_UP_CHILDREN = ("llm_proxy.ledger.",)
"""Children that do start-up work once (the usage ledger's migrations and price lookups): shown, not counted. Under
valgrind they outlive their own time limit and are stopped at a point that varies from run to run (±1M
instructions per request when divided by N2 − N1)."""


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


def measure(
    name: str, kind: str, count: int, up: Upstreams, layout: Layout, work: Path, concurrency: int = 8
) -> dict[str, int]:
    """Instructions executed by contender ``name`` over its whole life, serving ``count`` requests of ``kind``, by
    process command (the server, granian's worker, the usage ledger's start-up children...).

    Each count runs in a folder of its own, so that what the contender keeps beside its config (the usage ledger's
    database) starts empty both times."""
    folder = work / f"{name}-{count}"
    out_dir = folder / "callgrind"
    out_dir.mkdir(parents=True)
    contender = CONTENDERS[name]()
    procs = _Valgrind(folder / "logs")
    procs.out_dir = out_dir
    with procs:
        running = contender.start(procs, folder, up, layout, timeout=600)
        ep = contender.endpoint(running, up, kind)
        assert ep is not None and running.proc is not None
        body = stream_body(kind, ep.model) if kind != "chat" else _plain(ep.model)
        asyncio.run(_send(ep, body, 40, concurrency))  # warm-up: connections, lazy imports, caches
        done = asyncio.run(_send(ep, body, count, concurrency))
        if done != count:
            raise RuntimeError(f"{name}: {count - done} of {count} requests failed")
        stop(running.proc, grace=120)
    counts: dict[str, int] = {}
    for path in out_dir.glob("*.out"):
        command, total = _counted(path.read_bytes())
        counts[command] = counts.get(command, 0) + total
    return counts


def _counted(data: bytes) -> tuple[str, int]:
    """The command and the instruction total of one callgrind file (``totals:`` at its end, else the ``summary:``
    of its head; a process that exec'd or was killed leaves an empty file: nothing)."""
    found = _TOTALS.search(data) or _SUMMARY.search(data)
    command = _COMMAND.search(data)
    argv = command.group(1).decode(errors="replace").split() if command else []
    if "-m" in argv[:-1]:  # python -m module: the module names it
        label = argv[argv.index("-m") + 1]
    else:
        label = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:2])) or "?"
    return label, int(found.group(1)) if found else 0


def _plain(model: str) -> bytes:
    from bench.payloads import chat_request

    return chat_request(model)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--contenders", default="llm-proxy,llm-proxy-rsgi,minimal-asgi,minimal-rsgi")
    parser.add_argument("--kind", default="chat")
    parser.add_argument("--requests", default="100,400", help="the two request counts (N1,N2)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending at once")
    parser.add_argument("--out", type=Path, help="also write the table here (e.g. docs/profiles/instructions-chat.md)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep callgrind's files here (<contender>-<N>/<process>.<pid>.out) for callgrind_annotate",
    )
    options = parser.parse_args(argv)
    low, high = (int(n) for n in options.requests.split(","))
    layout = Layout.detect()
    per_unit = FULL.deltas_per_stream if options.kind != "chat" else 1
    unit = "delta" if per_unit > 1 else "request"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp) / "logs") as procs:
        work = Path(tmp) if options.keep is None else options.keep
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        fast = procs.start(
            "fast-upstream", [sys.executable, "-m", "bench.fast_upstream", "--port", str(port)], layout.load_cpu
        )
        wait_ready(fast, f"http://127.0.0.1:{port}/healthz", 20)
        up = Upstreams(fast_port=port, mock_port=port, slow_port=port)
        for name in options.contenders.split(","):
            counts = {n: measure(name, options.kind, n, up, layout, work, options.concurrency) for n in (low, high)}
            per_process = {
                command: (counts[high].get(command, 0) - counts[low].get(command, 0)) / (high - low) / per_unit
                for command in dict.fromkeys([*counts[low], *counts[high]])
            }
            results[name] = sum(v for c, v in per_process.items() if not c.startswith(START_UP_CHILDREN))
            print(f"{name}: {results[name]:,.0f} instructions per {unit} ({options.kind})", flush=True)
            if len(per_process) > 1:
                for command, value in per_process.items():
                    shown = " (start-up, not counted)" if command.startswith(START_UP_CHILDREN) else ""
                    print(f"  {command}: {value:,.0f}{shown}", flush=True)
    base = min(results.values())
    lines = [
        f"callgrind, instructions per {unit} of `{options.kind}` (all the contender's serving processes; "
        f"(I(N2) − I(N1)) ÷ (N2 − N1), N = {low}, {high}, {options.concurrency} clients at once; "
        f"`python -m bench.instructions --kind {options.kind}`)",
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
