"""A private Docker daemon for the container tests, and the images they need, built with no registry at all.

* ``Dockerd``: ``dockerd`` started by the test session with its own socket, exec root and pid file (so it does
  not touch a daemon the machine may already run), no bridge and no iptables rules: containers run with
  ``--network host`` only and reach nothing but loopback. Stopped by PID at the end.
* The base image: ``debootstrap --variant=minbase --include=python3,python3-venv bookworm`` (Debian packages
  are reachable, image registries are not), trimmed of docs, man pages, locales and apt lists, then
  ``docker import``. Debian bookworm's Python is 3.11.2.
* The wheelhouse: ``pip wheel`` run by that same Python 3.11.2 (chrooted into the debootstrap tree), so wheel
  tags and environment markers are the base's (redis needs ``async-timeout`` below 3.11.3: a wheelhouse made
  by a newer 3.11 lacks it and the air-gapped build fails).
* The image: ``docker build --network none --build-arg BASE_IMAGE=... --build-arg WHEELHOUSE=wheels .``

Everything slow is cached in the work tree (``.cache/container``, dockerd's data under ``.cache/docker``,
the wheelhouse in ``wheels/``), so a second run only rebuilds what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.deployment.files import CACHE, REPO

BASE_TAG = "llm-proxy-test/base:bookworm"
IMAGE_TAG = "llm-proxy-test/proxy:latest"
LABEL = "llm-proxy-test"
"""Every container the tests start carries this label, so teardown finds them all."""
WHEELHOUSE = REPO / "wheels"
CONTAINER_CACHE = CACHE / "container"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")


class DockerUnavailable(Exception):
    """dockerd did not start on this machine (the message says why)."""


@dataclass
class Dockerd:
    binary: str
    docker: str
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="llmp-dockerd-")))
    process: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def socket(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    def start(self, timeout: float = 60.0) -> None:
        data_root = CACHE / "docker"
        data_root.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--data-root",
            str(data_root),
            "--exec-root",
            str(self.run_dir / "exec"),
            "--pidfile",
            str(self.run_dir / "dockerd.pid"),
            "--host",
            self.socket,
            "--bridge",
            "none",
            "--iptables=false",
            "--ip6tables=false",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DockerUnavailable(f"dockerd exited with {self.process.returncode}: {self._log_tail()}")
            if self.run("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise DockerUnavailable(f"dockerd did not answer within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:])

    def run(
        self, *args: str, check: bool = True, timeout: float = 120.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "DOCKER_HOST": self.socket, **(env or {})}
        result = subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=timeout, env=environ, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        environ = {**os.environ, "DOCKER_HOST": self.socket}
        return subprocess.Popen(
            [self.docker, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ
        )

    def has_image(self, tag: str) -> bool:
        return self.run("image", "inspect", tag, check=False).returncode == 0

    def remove_test_containers(self) -> None:
        ids = self.run("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            self.run("rm", "-f", *ids, check=False, timeout=60)

    def stop(self) -> None:
        """Remove the test containers, then stop dockerd by PID (SIGTERM, SIGKILL after 30 s)."""
        process = self.process
        if process is not None and process.poll() is None:
            self.remove_test_containers()
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # dockerd and the containerd it started
                process.wait(10)
        # dockerd leaves its host network namespace bind-mounted under the exec root.
        for mount in _mounts_under(self.run_dir):
            subprocess.run(["umount", mount], capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _mounts_under(directory: Path) -> list[str]:
    """Mount points below ``directory``, deepest first."""
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(f"{directory}/")), key=len, reverse=True)


def build_base_image(dockerd: Dockerd, debootstrap: str) -> Path:
    """The debootstrap tree (kept for the wheelhouse) imported as ``BASE_TAG``; cached across runs."""
    rootfs = CONTAINER_CACHE / "rootfs"
    tarball = CONTAINER_CACHE / "base-bookworm.tar"
    if not tarball.exists():
        started = time.monotonic()
        shutil.rmtree(rootfs, ignore_errors=True)
        CONTAINER_CACHE.mkdir(parents=True, exist_ok=True)
        command = [
            debootstrap,
            "--variant=minbase",
            "--include=python3,python3-venv",
            "bookworm",
            str(rootfs),
            DEBIAN_MIRROR,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, f"debootstrap failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        for path in _TRIM:  # what a slim base leaves out too; nothing at run time reads these
            shutil.rmtree(rootfs / path, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
        partial.rename(tarball)
        dockerd.timings["debootstrap_s"] = time.monotonic() - started
    if not dockerd.has_image(BASE_TAG):
        dockerd.run("import", str(tarball), BASE_TAG, timeout=300)
    return rootfs


def build_wheelhouse(rootfs: Path, timings: dict[str, float]) -> Path:
    """``pip wheel`` of the project and its build requirements by the base's own Python, into ``wheels/``.

    Rebuilt when pyproject.toml changes (the dependency list lives there); the project's own wheel inside is
    not used by the image, which builds the source from the build context.
    """
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    stamp = WHEELHOUSE / ".pyproject.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return WHEELHOUSE
    started = time.monotonic()
    work = rootfs / "tmp" / "wheelhouse-build"
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", work / "src")
    shutil.copy(REPO / "README.md", work / "src")
    shutil.copytree(REPO / "src", work / "src" / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    # pip inside the chroot trusts what the host trusts (this machine's TLS setup included).
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", work / "ca.crt")
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    inside = "/tmp/wheelhouse-build"
    env = ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", f"PIP_CERT={inside}/ca.crt"]
    steps = [
        ["/usr/bin/python3", "-m", "venv", f"{inside}/venv"],
        [f"{inside}/venv/bin/pip", "wheel", "-q", "--disable-pip-version-check", "--wheel-dir", f"{inside}/wheels"]
        + [f"{inside}/src", "setuptools", "wheel"],
    ]
    for step in steps:
        result = subprocess.run(["chroot", str(rootfs), *env, *step], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{' '.join(step)} failed in the base's chroot:\n{result.stderr[-3000:]}"
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    shutil.copytree(work / "wheels", WHEELHOUSE)
    shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(digest)
    timings["wheelhouse_s"] = time.monotonic() - started
    return WHEELHOUSE


def build_image(dockerd: Dockerd) -> None:
    """The air-gapped build: no network during the build, the base and the wheelhouse local."""
    started = time.monotonic()
    dockerd.run(
        "build",
        "--network",
        "none",
        "--build-arg",
        f"BASE_IMAGE={BASE_TAG}",
        "--build-arg",
        f"WHEELHOUSE={WHEELHOUSE.relative_to(REPO)}",
        "--tag",
        IMAGE_TAG,
        str(REPO),
        timeout=900,
        env={"DOCKER_BUILDKIT": "0"},  # the classic builder: in every dockerd, resolves the base locally
    )
    dockerd.timings["image_build_s"] = time.monotonic() - started
    inspect = json.loads(dockerd.run("image", "inspect", IMAGE_TAG).stdout)[0]
    dockerd.timings["image_size_mb"] = inspect["Size"] / 1e6
