"""``python -m bench.startup [--config FILE] [--runs N] [--interface asgi|rsgi]``: launch time and idle memory.

Launches ``llm-proxy --config FILE`` (the console script beside this Python, or ``python -m llm_proxy`` when
there is none) N times on a free port of 127.0.0.1 and prints the median, min and max seconds from the launch to the
first ``200`` on ``/healthz``, and the median resident memory one second later (idle RSS, the process and any
children). ``--interface`` serves a copy of the config with ``server.interface`` set. Each process is stopped
(SIGTERM, by PID) before the next launch.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MiB (0 when it is gone)."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def launch_to_healthz(command: Sequence[str], config: Path, idle: list[float] | None = None) -> float:
    """Seconds from starting ``command --config config`` to its first 200 on ``/healthz``; with ``idle``, the
    resident memory one second later is appended to it."""
    port = _free_port()
    argv = [*command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _healthy(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited with code {proc.returncode}")
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"{' '.join(argv)}: no /healthz 200 within {TIMEOUT_S:.0f} s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        if idle is not None:
            time.sleep(1.0)
            idle.append(rss_mb(proc.pid))
        return elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--interface", choices=("asgi", "rsgi"), help="override server.interface")
    options = parser.parse_args(argv)
    script = Path(sys.executable).parent / "llm-proxy"  # this environment's console script, not another's on PATH
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "llm_proxy"]
    with tempfile.TemporaryDirectory() as tmp:
        config = options.config
        if options.interface:
            doc = yaml.safe_load(config.read_text())
            doc.setdefault("server", {})["interface"] = options.interface
            config = Path(tmp) / config.name
            config.write_text(yaml.safe_dump(doc, sort_keys=False))
        idle: list[float] = []
        times = [launch_to_healthz(command, config, idle) for _ in range(options.runs)]
    print(
        f"{' '.join(command)} --config {options.config} (interface {options.interface or 'from the config'}): "
        f"launch to first /healthz 200, {len(times)} runs: median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s; idle RSS median {statistics.median(idle):.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
