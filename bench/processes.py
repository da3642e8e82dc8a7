"""Starting, watching and stopping the processes under test: pinned to cores, stopped by PID.

Each process is started in a session of its own, so its process group id is its own PID: stopping it
signals that group (nginx's and uvicorn's workers included) and nothing else. ``Processes`` is a
context manager; everything it started is stopped on exit, also on Ctrl-C or an exception.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Layout:
    """Which cores run what. The same layout is used for every contender."""

    load_cpu: int
    """The load generator (wrk, the asyncio client, this orchestrator) and the mock upstream."""
    server_cpu: int
    """The contender under test, alone."""

    @classmethod
    def detect(cls) -> Layout:
        cpus = sorted(os.sched_getaffinity(0))
        return cls(load_cpu=cpus[0], server_cpu=cpus[1] if len(cpus) > 1 else cpus[0])

    def describe(self) -> str:
        if self.load_cpu == self.server_cpu:
            return f"one core only: everything on CPU {self.load_cpu}"
        return (
            f"CPU {self.load_cpu}: load generator (wrk / asyncio client) and the upstreams; "
            f"CPU {self.server_cpu}: the contender under test, alone"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, size: int = 600) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode("utf-8", "replace").strip()


@dataclass
class Processes:
    """The processes this run started; all are stopped when the context exits."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()

    def start(
        self, name: str, argv: Sequence[str], cpu: int, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        proc = Proc(name=name, popen=popen, log_path=log_path, started_at=time.perf_counter())
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        stop(proc)
        if proc in self.procs:
            self.procs.remove(proc)


def stop(proc: Proc, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (its own PID), then SIGKILL it if it lingers."""
    if proc.alive():
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.popen.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.popen.wait(5)
    # workers may outlive a master that exited on its own
    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class NotReady(Exception):
    """A process did not answer its health check in time."""


def wait_ready(proc: Proc, url: str, timeout: float) -> float:
    """Seconds from the start of ``proc`` to its first 200 on ``url``."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not proc.alive():
            raise NotReady(f"{proc.name} exited with code {proc.popen.returncode}: {proc.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return time.perf_counter() - proc.started_at
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.005)
    raise NotReady(f"{proc.name} did not answer {url} within {timeout:.0f} s: {proc.log_tail()}")


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in the group (a master and its workers), summed."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            # the fields after the parenthesised command: state, ppid, pgrp, ...
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            for line in Path(entry.path, "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


def wait_idle(pgid: int, *, window: float = 0.5, share: float = 0.02, timeout: float = 20.0) -> tuple[float, int]:
    """Wait until the group is idle: less than ``share`` of a CPU used over ``window`` seconds (a contender's
    start-up work, its short-lived children included, is done). Returns the seconds waited and the largest
    group RSS seen meanwhile (the start-up peak); gives up after ``timeout`` seconds."""
    peak = group_rss_bytes(pgid)

    def used() -> float:
        nonlocal peak
        peak = max(peak, group_rss_bytes(pgid))
        return group_cpu_seconds(pgid)

    return _wait_still(used, window, share, timeout), peak


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle so far (``/proc/stat``: every state but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = [int(value) for value in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def wait_machine_quiet(*, window: float = 0.3, share: float = 0.1, timeout: float = 15.0) -> float:
    """Wait until the machine as a whole is quiet: less than ``share`` of one CPU busy over ``window`` seconds
    (what the previous contender left behind, a stopped server's sockets and an upstream's closing streams,
    has settled). A launch timed on a busy machine measures the machine. Returns the seconds waited; gives up
    after ``timeout`` seconds."""
    return _wait_still(machine_busy_seconds, window, share, timeout)


def _wait_still(used: Callable[[], float], window: float, share: float, timeout: float) -> float:
    """Sleep ``window`` at a time until ``used`` (CPU seconds so far) grew by less than ``share`` of a CPU over one
    window, or ``timeout`` seconds passed; the seconds waited."""
    began = time.perf_counter()
    before = used()
    while time.perf_counter() - began < timeout:
        time.sleep(window)
        now = used()
        if now - before < share * window:
            break
        before = now
    return time.perf_counter() - began


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time used so far by every live process of the group, and by the children they reaped
    (the proxy's short-lived ledger children: without them the sum would drop when one exits)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime (ticks)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds a process group uses inside a ``with`` block (0 when there is no process)."""

    def __init__(self, pgid: int | None) -> None:
        self.pgid = pgid
        self.used = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = group_cpu_seconds(self.pgid) if self.pgid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pgid:
            self.used = group_cpu_seconds(self.pgid) - self._start


class PeakRss:
    """Samples a process group's RSS in a thread until stopped; ``peak`` is the largest sample."""

    def __init__(self, pgid: int, interval: float = 0.05) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, group_rss_bytes(self.pgid))
            self._stop.wait(self.interval)
