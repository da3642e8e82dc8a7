"""Paired A/B rounds of one proxy under wrk: several configs, alternated round by round, medians and ratios.

The bench machine is shared and its speed drifts by ±30% from one minute to the next, so a config measured
after another is not comparable with it; configs measured in the same round, one right after the other, are.
Each round runs every variant once (a fresh proxy per run; once its start-up work is done — the usage ledger
prepares its database and looks up prices in short-lived children — a short warm-up, then ``duration`` seconds of wrk),
in an order that rotates from round to round so that no variant always goes first. Per run: requests per
second, and the proxy's CPU time per request (its whole process group, from ``/proc``). The ratios a reader
should trust are the paired ones: a variant's figure over the base variant's in the same round, then the
median of those.

The proxy (``python3 -m llm_proxy``) is pinned alone on one core, wrk and the mock upstream on the other
(``bench.processes.Layout``); its stderr goes to a file.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import Endpoint
from bench.load import PlainResult, run_wrk
from bench.processes import CpuMeter, Layout, Proc, Processes, free_port, wait_idle, wait_ready

Configure = Callable[[str, int, int, int], Path]
"""``(variant, round, proxy port, upstream port)``: the config file to start the proxy with."""
PROXY_MODULE = "llm_proxy"
"""The module a variant's proxy runs as (``python3 -m``) unless ``modules`` names another for it."""


@dataclass
class Runs:
    """What each variant measured, round by round (lists in round order)."""

    rps: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    def median_rps(self, variant: str) -> float:
        return statistics.median(self.rps[variant])

    def median_cpu(self, variant: str) -> float:
        return statistics.median(self.cpu_us[variant])

    def rps_ratio(self, variant: str, base: str) -> float:
        """The median over rounds of this variant's req/s over the base's in the same round."""
        return statistics.median(a / b for a, b in zip(self.rps[variant], self.rps[base], strict=True))

    def cpu_ratio(self, variant: str, base: str) -> float:
        """The median over rounds of this variant's CPU per request over the base's in the same round."""
        return statistics.median(a / b for a, b in zip(self.cpu_us[variant], self.cpu_us[base], strict=True))


def rotation(variants: Sequence[str], n: int) -> list[str]:
    """The variants in round ``n``'s order: each round starts one further along, so that each goes first in turn."""
    shift = n % len(variants)
    return [*variants[shift:], *variants[:shift]]


def rounds(
    variants: Sequence[str],
    configure: Configure,
    work: Path,
    *,
    count: int,
    duration: float,
    concurrency: int,
    warmup: float = 2.0,
    path: str = "/p/v1/chat/completions",
    model: str = "bench",
    body: bytes,
    env: dict[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
) -> Runs:
    """``count`` rounds of every variant (see the module docstring), printing one line per run. ``modules``: the
    module a variant's proxy runs as, when not ``llm_proxy`` (``bench.null_metrics``)."""
    layout = Layout.detect()
    body_file = work / "body.json"
    body_file.write_bytes(body)
    runs = Runs({v: [] for v in variants}, {v: [] for v in variants})
    with Processes(work / "logs") as procs:
        upstream = _mock_upstream(procs, layout, env)
        for n in range(count):
            for variant in rotation(variants, n):  # none always goes first
                proxy, ep = _start_proxy(procs, layout, configure, variant, n, upstream, env, path, model, modules)
                run_wrk(ep, body_file, concurrency, warmup, layout.load_cpu, work)
                with CpuMeter(proxy.popen.pid) as cpu:
                    result = run_wrk(ep, body_file, concurrency, duration, layout.load_cpu, work)
                procs.stop(proxy)
                cpu_us = cpu.used / max(result.requests, 1) * 1e6
                runs.rps[variant].append(result.rps)
                runs.cpu_us[variant].append(cpu_us)
                print(
                    f"round {n + 1} {variant:8s} {result.rps:8.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                    f"{cpu_us:.0f} CPU µs/req" + (f"  ({result.errors} errors)" if result.errors else ""),
                    flush=True,
                )
    return runs


def side_by_side(
    variants: Sequence[str],
    configure: Configure,
    work: Path,
    *,
    count: int,
    duration: float,
    concurrency: int,
    warmup: float = 2.0,
    path: str = "/p/v1/chat/completions",
    model: str = "bench",
    body: bytes,
    env: dict[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
) -> Runs:
    """``count`` rounds in which every variant runs *at the same time*: one proxy per variant, all pinned to the
    same core and loaded together by one wrk each. The core's speed drifts, but within a round it drifts for
    all of them alike, and the scheduler shares the core fairly between processes that all want it: a variant
    that spends 5% more CPU per request serves ~5% fewer requests. Ratios of req/s within a round are then free
    of the drift that separate runs suffer from (``rounds``). Printed: each round's req/s and CPU µs/request,
    and the share of the core the proxies used together (near 1.0: the core, not the load, was the limit). The
    order in which the proxies and their loads start rotates from round to round, as in ``rounds``; ``modules``
    as there."""
    layout = Layout.detect()
    body_file = work / "body.json"
    body_file.write_bytes(body)
    runs = Runs({v: [] for v in variants}, {v: [] for v in variants})
    with Processes(work / "logs") as procs:
        upstream = _mock_upstream(procs, layout, env)
        for n in range(count):
            started: dict[str, tuple[Proc, Endpoint, Path]] = {}
            # Started, and their loads started, in an order that rotates from round to round: the position in
            # which a variant starts moves its share of the core by ~2 % (two identical configs differed so).
            for variant in rotation(variants, n):
                proxy, ep = _start_proxy(procs, layout, configure, variant, n, upstream, env, path, model, modules)
                folder = work / f"wrk-{variant}"
                folder.mkdir(exist_ok=True)
                started[variant] = (proxy, ep, folder)

            _together(started, body_file, concurrency, warmup, layout)
            measured = _together(started, body_file, concurrency, duration, layout)
            for proxy, _, _ in started.values():
                procs.stop(proxy)
            used = sum(cpu for _, cpu in measured.values()) / duration
            line = []
            for variant in variants:
                result, cpu = measured[variant]
                runs.rps[variant].append(result.rps)
                runs.cpu_us[variant].append(cpu / max(result.requests, 1) * 1e6)
                line.append(f"{variant} {result.rps:.0f} req/s {runs.cpu_us[variant][-1]:.0f} µs")
            print(f"round {n + 1}: " + ", ".join(line) + f"; core used {used:.2f}", flush=True)
    return runs


def _start_proxy(
    procs: Processes,
    layout: Layout,
    configure: Configure,
    variant: str,
    n: int,
    upstream: int,
    env: dict[str, str] | None,
    path: str,
    model: str,
    modules: Mapping[str, str] | None = None,
) -> tuple[Proc, Endpoint]:
    """``variant``'s proxy for round ``n``, pinned to the server core, ready and done with its start-up work (the
    ledger's children share the proxy's CPU); its endpoint for wrk."""
    port = free_port()
    module = (modules or {}).get(variant, PROXY_MODULE)
    argv = ["python3", "-m", module, "--config", str(configure(variant, n, port, upstream))]
    proxy = procs.start(f"proxy-{variant}-{n}", argv, layout.server_cpu, env)
    wait_ready(proxy, f"http://127.0.0.1:{port}/healthz", 30)
    wait_idle(proxy.popen.pid)
    return proxy, Endpoint(f"http://127.0.0.1:{port}{path}", model, "openai-chat", ())


def _together(
    started: dict[str, tuple[Proc, Endpoint, Path]], body: Path, concurrency: int, seconds: float, layout: Layout
) -> dict[str, tuple[PlainResult, float]]:
    """One wrk per variant, all at once; each variant's result and the CPU seconds its proxy used meanwhile."""
    results: dict[str, tuple[PlainResult, float]] = {}

    def one(variant: str) -> None:
        proxy, ep, folder = started[variant]
        with CpuMeter(proxy.popen.pid) as cpu:
            result = run_wrk(ep, body, concurrency, seconds, layout.load_cpu, folder)
        results[variant] = (result, cpu.used)

    threads = [threading.Thread(target=one, args=(variant,)) for variant in started]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _mock_upstream(procs: Processes, layout: Layout, env: dict[str, str] | None) -> int:
    """The mock upstream on the load core, ready; its port."""
    port = free_port()
    mock = procs.start(
        "mock", ["python3", "-m", "llm_proxy", "mock-upstream", "--port", str(port)], layout.load_cpu, env
    )
    wait_ready(mock, f"http://127.0.0.1:{port}/healthz", 30)
    return port
