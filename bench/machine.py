"""What the report says about where it ran: CPU, memory, kernel, Python, and each tool's version."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def describe() -> list[tuple[str, str]]:
    uname = platform.uname()
    return [
        ("CPU", f"{cpu_model()}, {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} usable)"),
        ("Memory", f"{memory_gb():.1f} GB"),
        ("Kernel", f"{uname.system} {uname.release} ({uname.machine})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]


def tool_versions() -> list[tuple[str, str]]:
    found = []
    for dist in ("aiohttp", "uvloop", "httptools", "orjson", "matplotlib"):
        try:
            found.append((dist, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            found.append((dist, "not installed"))
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-v"], capture_output=True, timeout=10)
        text = (out.stdout + out.stderr).decode().splitlines()
        found.append(("wrk", text[0].split("[")[0].strip() if text else "present"))
    else:
        found.append(("wrk", "not installed (Python load client used)"))
    return found
