"""The whole run: mocks up, every contender through every scenario round by round, report out.

All processes are started inside one ``Processes`` context, so they are stopped by PID when the run
ends, fails, or is interrupted with Ctrl-C.
"""

from __future__ import annotations

import datetime
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import charts, load, machine, report
from bench.contenders import CONTENDERS, REPO, Contender, Upstreams
from bench.processes import Layout, Processes, free_port, wait_ready
from bench.results import Results
from bench.scenarios import FAST_STREAMS, Bench, run_main_round, run_slow_round
from bench.settings import PRESETS, Settings

log = logging.getLogger("bench")


@dataclass(frozen=True, slots=True)
class Options:
    settings: Settings
    out: Path
    work: Path
    contenders: Sequence[str]
    install: bool
    load_client: str
    """``auto`` (wrk when installed), ``wrk`` or ``python``."""
    render_from: Path | None = None
    """Write only the report, from this saved ``results.json``."""


def _raise_fd_limit() -> None:
    # 1,000 streams hold ~2,000 sockets in a proxy and 1,000 in the client; children inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _use_wrk(opts: Options, work: Path) -> bool:
    if opts.load_client == "python":
        return False
    if load.wrk_available():
        return True
    if opts.install:
        from bench.contenders import _apt_install

        if _apt_install("wrk", work):
            return True
    if opts.load_client == "wrk":
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")
    log.warning("wrk is not installed: plain-request load uses the Python client (lower ceiling)")
    return False


def _start_upstreams(procs: Processes, s: Settings, layout: Layout) -> Upstreams:
    fast_port, mock_port, slow_port = free_port(), free_port(), free_port()
    common = ["--response-bytes", str(s.response_bytes)]
    fast_argv = [
        sys.executable,
        "-m",
        "bench.fast_upstream",
        "--port",
        str(fast_port),
        "--events",
        str(s.stream_events),
    ]
    fast = procs.start("fast-upstream", [*fast_argv, *common], layout.load_cpu, cwd=REPO)
    exe = [sys.executable, "-m", "llm_proxy", "mock-upstream", "--log-level", "warning"]
    mock = procs.start(
        "mock-fast", [*exe, "--port", str(mock_port), "--events", str(s.stream_events), *common], layout.load_cpu
    )
    slow_args = ["--port", str(slow_port), "--events", str(s.slow_events), "--delay-ms", str(s.slow_delay_ms)]
    slow = procs.start("mock-slow", [*exe, *slow_args, *common], layout.load_cpu)
    wait_ready(fast, f"http://127.0.0.1:{fast_port}/healthz", s.startup_timeout)
    wait_ready(mock, f"http://127.0.0.1:{mock_port}/healthz", s.startup_timeout)
    wait_ready(slow, f"http://127.0.0.1:{slow_port}/healthz", s.startup_timeout)
    return Upstreams(fast_port=fast_port, mock_port=mock_port, slow_port=slow_port)


def run(opts: Options) -> Path:
    s = opts.settings
    work = opts.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    layout = Layout.detect()
    described = machine.describe()  # before pinning, which narrows the usable CPUs to one
    # the orchestrator (and so the Python load client) runs on the load core, like wrk
    os.sched_setaffinity(0, {layout.load_cpu})
    _raise_fd_limit()
    began, started = time.perf_counter(), datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    use_wrk = _use_wrk(opts, work)
    contenders: list[Contender] = [CONTENDERS[name]() for name in opts.contenders]
    unavailable = {c.name: c.unavailable(opts.install, work) for c in contenders}
    versions = {c.name: (c.version(work) if unavailable[c.name] is None else "n/a") for c in contenders}
    load_samples: list[float] = []
    with Processes(work / "logs") as procs, _LoadSampler(load_samples):
        up = _start_upstreams(procs, s, layout)
        bench = Bench(settings=s, work=work, layout=layout, procs=procs, up=up, use_wrk=use_wrk)
        for rnd in range(s.runs):
            for c in contenders:
                reason = unavailable[c.name]
                if reason is not None:
                    _skip_everywhere(bench, c, reason)
                    continue
                log.info("round %d/%d: %s", rnd + 1, s.runs, c.name)
                run_main_round(bench, c, rnd)
                run_slow_round(bench, c, rnd)
    meta = {
        "mode": s.mode,
        "contenders": [c.name for c in contenders],
        "versions": versions,
        "started": started,
        "elapsed_s": time.perf_counter() - began,
        "load_client": "wrk" if use_wrk else "python",
        "load": load_samples,
        "layout": layout.describe(),
    }
    doc = {**bench.results.to_json(), "meta": meta}
    (work / "results.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return write_report(bench.results, meta, described, opts.out)


def write_report(res: Results, meta: dict[str, Any], described: list[tuple[str, str]], out: Path) -> Path:
    """The Markdown report (and its charts) of a run's results and what the run recorded about itself."""
    s = PRESETS[meta["mode"]]
    contenders = [CONTENDERS[name]() for name in meta["contenders"]]
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    drawn = charts.draw(res, s, contenders, out.parent) if charts.available() else []
    note = {
        "full": "Generated by a full run.",
        "quick": "Generated by a **quick** run (`--quick`): indicative only.",
        "smoke": "Generated by a **smoke** run (tiny load, for the test suite): the numbers mean nothing.",
    }[s.mode]
    wrk = meta["load_client"] == "wrk"
    ctx = report.Context(
        settings=s,
        contenders=contenders,
        machine=described,
        versions=machine.tool_versions(),
        contender_versions=meta["versions"],
        layout=meta["layout"],
        load_client="wrk (1 thread, Lua script POSTing the JSON body)" if wrk else "the Python aiohttp client",
        started=meta["started"],
        elapsed_s=meta["elapsed_s"],
        run_note=note,
        load=meta.get("load", ()),
    )
    out.write_text(report.render(res, ctx, drawn, out))
    return out


def render_saved(results: Path, out: Path) -> Path:
    """The report of an earlier run, from its ``results.json`` (e.g. after the report's layout changed)."""
    doc = orjson.loads(results.read_bytes())
    return write_report(Results.from_json(doc), doc["meta"], machine.describe(), out)


class _LoadSampler:
    """Samples the 1-minute load average every 10 s in a thread, into ``samples``."""

    def __init__(self, samples: list[float]) -> None:
        self.samples = samples
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(10):
                return


def _skip_everywhere(bench: Bench, c: Contender, reason: str) -> None:
    s = bench.settings
    cells = ["s4", "s5", *(f"s2/{k}" for k in FAST_STREAMS), *(f"s1/c{n}" for n in s.concurrency)]
    cells += [f"s3/{k}" for k in (*s.pairs, "pass:openai-chat", "pass:claude")]
    for cell in cells:
        bench.results.skip(cell, c.name, reason)
