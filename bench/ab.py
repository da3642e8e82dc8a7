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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import Endpoint
from bench.load import run_wrk
from bench.processes import CpuMeter, Layout, Processes, free_port, wait_idle, wait_ready

Configure = Callable[[str, int, int, int], Path]
"""``(variant, round, proxy port, upstream port)``: the config file to start the proxy with."""


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
) -> Runs:
    """``count`` rounds of every variant (see the module docstring), printing one line per run."""
    layout = Layout.detect()
    body_file = work / "body.json"
    body_file.write_bytes(body)
    runs = Runs({v: [] for v in variants}, {v: [] for v in variants})
    with Processes(work / "logs") as procs:
        upstream = free_port()
        mock = procs.start(
            "mock", ["python3", "-m", "llm_proxy", "mock-upstream", "--port", str(upstream)], layout.load_cpu, env
        )
        wait_ready(mock, f"http://127.0.0.1:{upstream}/healthz", 30)
        for n in range(count):
            shift = n % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:  # neither always goes first
                port = free_port()
                config = configure(variant, n, port, upstream)
                argv = ["python3", "-m", "llm_proxy", "--config", str(config)]
                proxy = procs.start(f"proxy-{variant}-{n}", argv, layout.server_cpu, env)
                wait_ready(proxy, f"http://127.0.0.1:{port}/healthz", 30)
                wait_idle(proxy.popen.pid)  # start-up work done (the ledger's children share the proxy's CPU)
                ep = Endpoint(f"http://127.0.0.1:{port}{path}", model, "openai-chat", ())
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
