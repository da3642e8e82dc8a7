"""A real ``redis-server`` for the tests, on an ephemeral port of 127.0.0.1.

Fixtures (registered in ``tests/conftest.py``):

* ``redis_server``: one server for the whole test session (no persistence), killed by PID at the end;
* ``redis_url``: the URL of that server, emptied (FLUSHALL) before the test;
* ``disposable_redis``: a server of its own for one test, which the test may ``kill()`` mid-way to prove
  that requests still go through without it.

Without a ``redis-server`` on PATH these tests skip, naming the apt command (``.ci/run`` installs it;
under ``CI`` a missing server fails them, see ``tests/prerequisites.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import prerequisites

_START_TIMEOUT_S = 10.0


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> bytes:
        """Send one inline command and return the raw reply line (e.g. ``b"+PONG"``)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(" ".join(words).encode() + b"\r\n")
            return conn.makefile("rb").readline().rstrip(b"\r\n")

    def kill(self) -> None:
        """Kill the server by PID (SIGKILL: no goodbye to clients, like a crash) and reap it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis() -> RedisServer:
    """Start ``redis-server`` and wait until it answers PING."""
    binary = prerequisites.command("redis-server", "redis-server", "apt-get install -y redis-server (root)")
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = _free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(process=process, port=port)
        if _wait_ready(server):
            return server
        server.kill()
    pytest.fail("redis-server did not start")


def _wait_ready(server: RedisServer) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if server.command("PING") == b"+PONG":
                return True
        except OSError:
            pass  # not listening yet
        time.sleep(0.02)
    return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if redis_server.command("FLUSHALL") != b"+OK":
        pytest.fail("FLUSHALL failed")
    return redis_server.url


@pytest.fixture
def disposable_redis() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.kill()
