"""``python -m bench.observed``: what an access line per request costs a running proxy, text or JSON.

Four configs of the same proxy-mode route (non-streamed openai-chat, the mock upstream), in paired rounds
(``bench.ab``): ``bare`` (no access line, and metrics recorded nowhere: ``bench.null_metrics``), ``quiet``
(``access_log: false``, ``log_level: warning``: metrics only, as shipped), ``text`` and ``json`` (``access_log:
true``, ``log_level: info``, that ``log_format``). The proxy's stderr, where its lines go, is a file
(``bench.processes``), as under a process supervisor that collects it. Reported: per variant the median req/s and
CPU µs per request, and the paired ratios to ``bare`` (what metrics and the line cost together) and to ``quiet``
(what the line costs). The machine is shared and drifts by ±30%
from minute to minute: read the paired ratios, not the raw figures.

The instruction counts of the same lines, in-process and without the noise: ``python -m bench.callgrind_request
--measure proxy proxy-text-log proxy-json-log``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml

from bench.ab import rounds, side_by_side
from bench.payloads import chat_request

VARIANTS = ("bare", "quiet", "text", "json")
MODULES = {"bare": "bench.null_metrics"}
"""The variants whose proxy is not ``python3 -m llm_proxy``."""
ROOT = Path(__file__).resolve().parent.parent


def configure(variant: str, n: int, port: int, upstream: int, work: Path) -> Path:
    models = [
        {
            "frontend_model_name": "bench",
            "frontend_base_url": "/p",
            "backend_base_url": f"http://127.0.0.1:{upstream}",
            "backend_model_name": "upstream-model",
            "backend_api_key": "sk-bench-route-key-0000000000",
        }
    ]
    server: dict[str, object] = {"port": port, "usage_store": "none"}
    if variant in ("bare", "quiet"):
        server.update(access_log=False, log_level="warning")
    else:
        server.update(access_log=True, log_level="info", log_format=variant)
    path = work / f"{variant}-{n}.yaml"
    path.write_text(yaml.safe_dump({"server": server, "models": models}))
    return path


def _access_lines(logs: Path, variant: str) -> int:
    return sum(
        1 for log in logs.glob(f"proxy-{variant}-*.log") for line in log.open("rb") if b"llm_proxy.access" in line
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observed", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of wrk per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each measured run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--side-by-side", action="store_true", help="the variants at the same time on one core (bench.ab.side_by_side)"
    )
    options = parser.parse_args(argv)
    # The proxy under test is this checkout's, whatever package is installed (and ``bench`` for ``bare``).
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="bench-observed-") as tmp:
        work = Path(tmp)
        runs = (side_by_side if options.side_by_side else rounds)(
            VARIANTS,
            lambda variant, n, port, upstream: configure(variant, n, port, upstream, work),
            work,
            count=options.rounds,
            duration=options.duration,
            concurrency=options.concurrency,
            warmup=options.warmup,
            body=chat_request("bench"),
            env={"PYTHONPATH": pythonpath},
            modules=MODULES,
        )
        written = {v: _access_lines(work / "logs", v) for v in VARIANTS}
    print(f"medians of {options.rounds} rounds ({options.duration:g} s each, c={options.concurrency}):")
    for variant in VARIANTS:
        line = f"  {variant:6s} {runs.median_rps(variant):8.0f} req/s  {runs.median_cpu(variant):6.0f} CPU µs/req"
        for base in ("bare", "quiet")[: VARIANTS.index(variant)]:
            line += (
                f"   vs {base}: req/s x{runs.rps_ratio(variant, base):.3f}, "
                f"CPU/req x{runs.cpu_ratio(variant, base):.3f}"
            )
        print(line)
    print(f"access lines written (warm-ups included): {written}; the machine drifts by ±30%: trust the paired ratios")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
