"""``python -m bench.profile [--kind chat|claude|fast:A->B] [--contender NAME]``: where llm-proxy's CPU goes.

Starts the fast upstream (CPU 0) and llm-proxy (CPU 1, as the bench runs that contender), drives it with wrk
(CPU 0, 64 connections; streamed kinds with the asyncio stream client) while ``py-spy record`` samples the
proxy, and writes a flame graph (SVG) and a table of the top costs: per function, the share of samples spent
in it (self) and under it (inclusive). Sampling slows the proxy a little; the shares are what matter.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from bench import load, payloads
from bench.contenders import CONTENDERS, REPO, Endpoint, Upstreams
from bench.processes import Layout, Processes, free_port, wait_ready
from bench.scenarios import stream_body

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _where(frame: str) -> str:
    """``function (file)`` with the file shortened to its package path."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def top_costs(collapsed: str, limit: int = 25) -> tuple[int, list[tuple[str, float, float]]]:
    """(samples, [(function, self %, inclusive %)]) from py-spy's collapsed stacks, by self share."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_where(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            under[name] += count
    rows = [(name, 100 * n / total, 100 * under[name] / total) for name, n in own.most_common(limit)]
    return total, rows


def by_file(collapsed: str, limit: int = 15) -> list[tuple[str, float]]:
    """Self share of samples per source file (module): where to cut, one level above functions."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        total += int(count_text)
        leaf = _where(stack.rsplit(";", 1)[-1])
        own[leaf[leaf.rfind("(") + 1 : -1] if leaf.endswith(")") else leaf] += int(count_text)
    return [(name, 100 * n / total) for name, n in own.most_common(limit)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--kind", default="chat", help="chat (plain POSTs) or a streamed kind of the bench")
    parser.add_argument(
        "--contender", choices=("llm-proxy", "llm-proxy-rsgi", "llm-proxy-features"), default="llm-proxy"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "profiles")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    options = parser.parse_args(argv)
    if shutil.which("py-spy") is None or shutil.which("wrk") is None:
        raise SystemExit("bench.profile needs py-spy and wrk")
    layout = Layout.detect()
    os.sched_setaffinity(0, {layout.load_cpu})  # the stream client runs here, beside wrk's core
    options.out.mkdir(parents=True, exist_ok=True)
    name = f"{options.contender}-{options.kind.replace(':', '-').replace('->', '-to-')}"
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp) / "logs") as procs:
        work = Path(tmp)
        fast_port = free_port()
        fast = procs.start(
            "fast-upstream", [sys.executable, "-m", "bench.fast_upstream", "--port", str(fast_port)], layout.load_cpu,
            cwd=REPO,
        )  # fmt: skip
        wait_ready(fast, f"http://127.0.0.1:{fast_port}/healthz", 20)
        up = Upstreams(fast_port=fast_port, mock_port=fast_port, slow_port=fast_port)
        contender = CONTENDERS[options.contender]()
        running = contender.start(procs, work, up, layout, timeout=30)
        ep = contender.endpoint(running, up, options.kind)
        assert ep is not None and running.proc is not None
        proc = running.proc
        raw = work / "stacks.txt"
        svg = options.out / f"{name}.svg"
        spy = ["py-spy", "record", "--pid", str(proc.pid), "--rate", str(options.rate), "--duration",
               str(options.seconds), "--function", "--nonblocking"]  # fmt: skip
        # the load runs while py-spy records twice: a flame graph (SVG), then the raw stacks for the table
        loader = threading.Thread(target=_load, args=(options.kind, ep, 2 * options.seconds + 3, layout, work))
        loader.start()
        for extra in (["--format", "flamegraph", "--output", str(svg)], ["--format", "raw", "--output", str(raw)]):
            subprocess.run(["taskset", "-c", str(layout.load_cpu), *spy, *extra], capture_output=True, check=True)
        loader.join()
        collapsed = raw.read_text()
        total, rows = top_costs(collapsed)
        table = options.out / f"{name}.md"
        lines = [
            f"py-spy, {options.rate} Hz, {options.seconds} s, {total:,} samples (`python -m bench.profile --kind "
            f"{options.kind} --contender {options.contender}`)",
            "",
            "| function (file) | self % | inclusive % |",
            "|---|---|---|",
            *(f"| `{n}` | {s:.1f} | {i:.1f} |" for n, s, i in rows),
            "",
            "| file | self % |",
            "|---|---|",
            *(f"| `{n}` | {s:.1f} |" for n, s in by_file(collapsed)),
        ]
        table.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        print(f"flame graph: {svg}; table: {table}")
    return 0


def _load(kind: str, ep: Endpoint, seconds: int, layout: Layout, work: Path) -> None:
    if kind == "chat":
        body = work / "body.json"
        body.write_bytes(payloads.chat_request(ep.model))
        result = load.run_wrk(ep, body, 64, seconds, layout.load_cpu, work)
        print(f"load: {result.rps:,.0f} req/s under sampling")
        return
    out = asyncio.run(load.stream_load(ep, stream_body(kind, ep.model), 32, duration=seconds, deadline=seconds + 60))
    print(f"load: {out.ok / out.elapsed:,.1f} streams/s under sampling, {out.failed} failed")


if __name__ == "__main__":
    sys.exit(main())
