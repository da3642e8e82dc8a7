"""The five scenarios of the benchmark, run round by round for every contender.

Per round and contender: start it (scenario 5: time to first 200, idle RSS), then scenario 1 (plain
JSON POSTs at each concurrency), 2 (streamed passthrough) and 3 (streamed translation, and the
passthrough it is compared with), stop it; start it again for scenario 4 (many slow streams, peak RSS)
so that the memory peak is not inherited from earlier load, and stop it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import load, payloads
from bench.contenders import FAST_PAIRS, Contender, Endpoint, Running, Upstreams, kind_dialect
from bench.processes import CpuMeter, Layout, NotReady, PeakRss, Processes, group_rss_bytes, wait_idle
from bench.results import Results
from bench.settings import Settings

log = logging.getLogger("bench")
MB = 1024 * 1024
IDLE_SETTLE = 1.0
"""Seconds a contender rests after start, and after its start-up work is done (``wait_idle``: no CPU used over
half a second; llm-proxy's usage ledger prepares its database and looks up prices in short-lived children for
the first second or two), before its idle RSS is read."""


@dataclass
class Bench:
    settings: Settings
    work: Path
    layout: Layout
    procs: Processes
    up: Upstreams
    use_wrk: bool
    results: Results = field(default_factory=Results)

    def body_file(self, name: str, data: bytes) -> Path:
        path = self.work / "bodies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


def reference_kind(pair: str) -> str:
    """The passthrough a translation is compared with: the same upstream stream, untranslated."""
    return "pass:" + pair.split("->")[1]


def stream_kinds(settings: Settings) -> list[str]:
    refs = sorted({reference_kind(p) for p in settings.pairs})
    return [*settings.pairs, *refs]


FAST_STREAMS = ("chat", "claude", *FAST_PAIRS)
"""The streams of scenario 2, all from the fast upstream: the two passthroughs and the translations between them."""


def fast_reference(kind: str) -> str:
    """The passthrough a fast-upstream translation is compared with: the upstream's own stream, untranslated."""
    return "chat" if kind.endswith("->openai-chat") else "claude"


def stream_body(kind: str, model: str) -> bytes:
    if kind in ("chat", "slow"):
        return payloads.chat_request(model, stream=True)
    if kind == "claude":
        return payloads.claude_request(model, stream=True)
    if kind.startswith("fast:"):
        front = kind_dialect(kind)
        return payloads.claude_request(model, stream=True) if front == "claude" else payloads.chat_request(model, True)
    dialect = kind[5:] if kind.startswith("pass:") else kind.split("->")[0]
    return payloads.tool_request(dialect, model)


# --------------------------------------------------------------------------------------------------


def run_main_round(bench: Bench, contender: Contender, rnd: int) -> None:
    s = bench.settings
    cells = ["s5", *(f"s1/c{c}" for c in s.concurrency), *(f"s2/{k}" for k in FAST_STREAMS)]
    cells += [f"s3/{k}" for k in stream_kinds(s)]
    try:
        running = contender.start(bench.procs, bench.work, bench.up, bench.layout, s.startup_timeout, s.quiet_timeout)
    except NotReady as exc:
        for cell in cells:
            bench.results.skip(cell, contender.name, f"did not start: {exc}")
        return
    try:
        _startup(bench, running, rnd)
        for c in s.concurrency:
            _plain(bench, running, c, rnd)
        for kind in FAST_STREAMS:
            _streams(bench, running, f"s2/{kind}", kind, rnd)
        for kind in stream_kinds(s):
            _streams(bench, running, f"s3/{kind}", kind, rnd)
    finally:
        if running.proc is not None:
            bench.procs.stop(running.proc)


def run_slow_round(bench: Bench, contender: Contender, rnd: int) -> None:
    s = bench.settings
    try:
        running = contender.start(bench.procs, bench.work, bench.up, bench.layout, s.startup_timeout, s.quiet_timeout)
    except NotReady as exc:
        bench.results.skip("s4", contender.name, f"did not start: {exc}")
        return
    try:
        ep = contender.endpoint(running, bench.up, "slow")
        if ep is None:
            bench.results.skip("s4", contender.name, "no streaming route")
            return
        body = stream_body("slow", ep.model)
        deadline = s.slow_seconds * 2 + 20
        pgid = running.proc.pid if running.proc is not None else 0
        if pgid:
            wait_idle(pgid)  # the streams meet a started server (its start-up work done), as in scenario 5
        idle = group_rss_bytes(pgid) if pgid else 0
        with PeakRss(pgid) if pgid else _NoRss() as peak:
            out = asyncio.run(load.stream_load(ep, body, s.slow_streams, deadline=deadline))
        sample = {
            "ok": float(out.ok),
            "failed": float(out.failed),
            "ttfb_p50_ms": load.percentile(out.ttfb_ms, 50),
            "ttfb_p99_ms": load.percentile(out.ttfb_ms, 99),
            "total_p99_ms": load.percentile(out.total_ms, 99),
        }
        if pgid:
            sample["peak_rss_mb"] = peak.peak / MB
            sample["start_rss_mb"] = idle / MB
        bench.results.put("s4", contender.name, rnd, sample)
        if out.reasons:
            log.warning("%s: slow streams failed: %s", contender.name, out.reasons)
    finally:
        if running.proc is not None:
            bench.procs.stop(running.proc)


class _NoRss:
    peak = 0

    def __enter__(self) -> _NoRss:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# --------------------------------------------------------------------------------------------------


def _startup(bench: Bench, running: Running, rnd: int) -> None:
    name = running.contender.name
    if running.proc is None or running.startup is None:
        bench.results.skip("s5", name, "baseline: nothing to start")
        return
    time.sleep(IDLE_SETTLE)
    settled, peak = wait_idle(running.proc.pid)
    rss = group_rss_bytes(running.proc.pid)
    sample = {"startup_s": running.startup, "idle_rss_mb": rss / MB, "start_peak_rss_mb": peak / MB}
    bench.results.put("s5", name, rnd, {**sample, "settle_s": IDLE_SETTLE + settled})


def _pgid(running: Running) -> int | None:
    return running.proc.pid if running.proc is not None else None


def probe(ep: Endpoint, body: bytes) -> str | None:
    """None if one request succeeds, else why not (so an incomplete codec reads as "n/a", not a crash)."""
    request = urllib.request.Request(ep.url, data=body, headers=dict(ep.headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            data: bytes = resp.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:160].decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return f"request failed: {exc}"
    if b'"stream":true' in body.replace(b" ", b"") and payloads.STREAM_END[ep.dialect] not in data[-load.TAIL :]:
        return f"stream did not complete: {data[-160:].decode('utf-8', 'replace')}"
    if b"[[mock:tool" in body and payloads.TOOL_NAME.encode() not in data:
        return "the reply carries no tool call"
    return None


def _plain(bench: Bench, running: Running, c: int, rnd: int) -> None:
    cell, name = f"s1/c{c}", running.contender.name
    ep = running.contender.endpoint(running, bench.up, "chat")
    if ep is None:
        bench.results.skip(cell, name, "no chat route")
        return
    body = payloads.chat_request(ep.model)
    failure = probe(ep, body)
    if failure is not None:
        bench.results.skip(cell, name, failure)
        return
    s = bench.settings
    with CpuMeter(_pgid(running)) as cpu:
        if bench.use_wrk:
            path = bench.body_file(f"{name}-chat.json", body)
            result = load.run_wrk(ep, path, c, s.duration, bench.layout.load_cpu, bench.work)
        else:
            result = asyncio.run(load.python_load(ep, body, c, s.duration))
    sample = {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": float(result.errors)}
    if running.proc is not None and result.requests:
        sample["cpu_us_req"] = cpu.used / result.requests * 1e6
    bench.results.put(cell, name, rnd, sample)
    log.info("%s %s: %.0f rps, p50 %.2f ms, p99 %.2f ms", name, cell, result.rps, result.p50_ms, result.p99_ms)


def _streams(bench: Bench, running: Running, cell: str, kind: str, rnd: int) -> None:
    name = running.contender.name
    ep = running.contender.endpoint(running, bench.up, kind)
    if ep is None:
        bench.results.skip(cell, name, f"{running.contender.label} does not offer {kind}")
        return
    body = stream_body(kind, ep.model)
    failure = probe(ep, body)
    if failure is not None:
        bench.results.skip(cell, name, failure)
        return
    s = bench.settings
    deadline = s.stream_duration + 60
    single = asyncio.run(load.stream_load(ep, body, 1, duration=s.stream_duration, deadline=deadline))
    with CpuMeter(_pgid(running)) as cpu:
        many = asyncio.run(
            load.stream_load(ep, body, s.stream_concurrency, duration=s.stream_duration, deadline=deadline)
        )
    sample = {
        "ttfb_p50_ms": load.percentile(single.ttfb_ms, 50),
        "ttfb_p99_ms": load.percentile(single.ttfb_ms, 99),
        "stream_p50_ms": load.percentile(single.total_ms, 50),
        "streams_s": many.ok / many.elapsed if many.elapsed else 0.0,
        "deltas_s": many.ok * s.deltas_per_stream / many.elapsed if many.elapsed else 0.0,
        "failed": float(single.failed + many.failed),
    }
    if running.proc is not None and many.ok:
        # CPU per delta measures the contender itself, whoever the bottleneck of the run was
        sample["cpu_us_delta"] = cpu.used / (many.ok * s.deltas_per_stream) * 1e6
    bench.results.put(cell, name, rnd, sample)
    log.info("%s %s: TTFB p50 %.2f ms, %.0f deltas/s", name, cell, sample["ttfb_p50_ms"], sample["deltas_s"])
