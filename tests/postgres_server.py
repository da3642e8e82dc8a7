"""A real PostgreSQL for the tests, on an ephemeral port of 127.0.0.1, run as the unprivileged user ``nobody``.

``postgres`` refuses to run as root (the tests do), so the fixture makes a data directory owned by ``nobody``,
runs ``initdb`` and the server as that user (trust authentication, loopback only, its socket in the data
directory), creates a database, and stops the server by its PID at the end. ``PostgresServer.stop`` and
``start`` let a test take the database away mid-run and bring it back on the same port.

Debian puts the binaries in ``/usr/lib/postgresql/<version>/bin`` (not on PATH). Without them these tests skip,
naming the apt package (``.ci/run`` installs it; under ``CI`` a missing server fails them, see
``tests/prerequisites.py``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import prerequisites

_START_TIMEOUT_S = 20.0
DATABASE = "ledger"


def binaries() -> Path:
    """The folder of initdb and postgres (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        prerequisites.missing("PostgreSQL", "apt-get install -y postgresql (root)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    bin: Path
    data: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _as_nobody(self) -> dict[str, int]:
        entry = pwd.getpwnam("nobody")
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def start(self) -> None:
        args = [
            str(self.bin / "postgres"),
            *("-D", str(self.data / "db"), "-p", str(self.port), "-k", str(self.data)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
        ]
        log = open(self.data / "server.log", "ab")  # noqa: SIM115 - the server writes to it until it stops
        self.process = subprocess.Popen(args, stdout=log, stderr=log, **self._as_nobody())  # type: ignore[call-overload]
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"postgres exited at start: {(self.data / 'server.log').read_text()[-2000:]}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail("postgres did not become ready")

    def stop(self) -> None:
        """Stop the server by its PID (SIGINT: PostgreSQL's fast shutdown, clients cut off) and reap it."""
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.process = None


def start_postgres() -> PostgresServer:
    folder = binaries()
    data = Path(tempfile.mkdtemp(prefix="llm-proxy-pg-"))
    entry = pwd.getpwnam("nobody")
    os.chown(data, entry.pw_uid, entry.pw_gid)
    os.chmod(data, 0o700)
    server = PostgresServer(bin=folder, data=data, port=_free_port())
    init = subprocess.run(
        [str(folder / "initdb"), "-D", str(data / "db"), "-U", "postgres", "-A", "trust", "--no-sync"],
        capture_output=True,
        cwd=data,
        **server._as_nobody(),  # type: ignore[call-overload]
    )
    if init.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr.decode()[-2000:]}")
    server.start()
    create = subprocess.run(
        [str(folder / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", DATABASE],
        capture_output=True,
    )
    if create.returncode != 0:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
        pytest.fail(f"createdb failed: {create.stderr.decode()}")
    return server


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own (it may stop and restart it)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)
