"""The image for real: built air-gapped, run by a private dockerd, on the host network (loopback only).

Each container runs as Kubernetes runs it with the manifests' securityContext: read-only root filesystem,
every capability dropped, no privilege escalation. Upstreams and Redis are processes of the test on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from llm_proxy.app.serve import MockApp
from llm_proxy.upstream.mock import MockOptions, MockUpstream
from tests.deployment.docker import BASE_TAG, LABEL, WHEELHOUSE, Dockerd
from tests.deployment.files import REPO, final_stage, one
from tests.redis_server import RedisServer
from tests.servers import Recorded, RecordingUpstream, Reply, ServerThread, running_upstream, write_config

CONFIG_PATH = "/etc/llm-proxy/config.yaml"
ONLINE_TAG = "llm-proxy-test/proxy:online"
IMAGE_PORT = int(one(final_stage(), "EXPOSE").text)
IMAGE_USER = one(final_stage(), "USER").text
GRACE_S = 10
"""shutdown_grace_period of the drain test's config."""
STREAM_EVENTS, STREAM_DELAY_S = 40, 0.05
"""The slow stream: 40 deltas, 50 ms apart (2 s in all)."""
CHAT_REPLY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def _container(dockerd: Dockerd, image: str, *command: str, config: Path | None = None) -> Iterator[str]:
    """A running container (removed afterwards), hardened like the Kubernetes Deployment runs it."""
    name = f"llm-proxy-test-{uuid.uuid4().hex[:8]}"
    args = ["run", "--detach", "--pull", "never", "--network", "host", "--name", name, "--label", LABEL]
    args += ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if config is not None:
        args += ["--volume", f"{config}:{CONFIG_PATH}:ro"]
    dockerd.run(*args, image, *command)
    try:
        yield name
    finally:
        dockerd.run("rm", "--force", name, check=False)


def _wait_ready(dockerd: Dockerd, name: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(port, "/readyz") == (200, b"OK"):
                return
        except OSError:
            pass  # not listening yet
        if _state(dockerd, name)["Status"] != "running":
            break
        time.sleep(0.1)
    logs = dockerd.run("logs", name, check=False)
    raise AssertionError(f"container {name} not ready on port {port}:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")


def _state(dockerd: Dockerd, name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(dockerd.run("inspect", "--format", "{{json .State}}", name).stdout)
    return state


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _post(port: int, path: str, doc: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, orjson.dumps(doc), {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _chat(text: str, *, stream: bool = False) -> dict[str, Any]:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]
    return {"model": "m", "messages": messages, "stream": stream}


def test_image_runs_non_root_answers_the_demo_and_turns_healthy(dockerd: Dockerd, image: str) -> None:
    """`docker run IMAGE` alone: the baked demo config on 0.0.0.0:8080, as user 10001, PID 1 the proxy."""
    assert not _accepts(IMAGE_PORT), f"port {IMAGE_PORT} of 127.0.0.1 is taken: the image's default command needs it"
    with _container(dockerd, image) as name:
        _wait_ready(dockerd, name, IMAGE_PORT)
        assert _get(IMAGE_PORT, "/healthz") == (200, b"OK")
        status, body = _post(IMAGE_PORT, "/openai/v1/chat/completions", {**_chat("hello"), "model": "gpt-demo"})
        assert status == 200, body
        reply = orjson.loads(body)
        assert (reply["model"], reply["choices"][0]["message"]["content"]) == ("mock-gpt", "mock reply: hello")

        assert dockerd.run("exec", name, "id", "-u").stdout.strip() == IMAGE_USER.split(":")[0] == "10001"
        pid1 = dockerd.run("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
        assert pid1[1:] == ["/opt/llm-proxy/bin/llm-proxy", "--config", CONFIG_PATH, "--host", "0.0.0.0", "--port"] + [
            str(IMAGE_PORT),
            "",
        ]
        memory = dockerd.run("stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout.split("/")[0]
        dockerd.timings["idle_memory"] = float(memory.strip().removesuffix("MiB"))

        deadline = time.monotonic() + 60  # the image's HEALTHCHECK: first probe after its 10 s interval
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = _state(dockerd, name)["Health"]
            if health["Status"] != "starting":
                break
            time.sleep(0.5)
        assert health["Status"] == "healthy", health
        assert health["Log"][-1]["ExitCode"] == 0


@pytest.fixture
def chat_upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    fake = RecordingUpstream()

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, orjson.dumps(CHAT_REPLY))

    fake.handler = handler
    with running_upstream(fake) as server:
        yield fake, server


def test_two_replicas_share_session_progress_through_redis(
    dockerd: Dockerd,
    image: str,
    tmp_path: Path,
    redis_server: RedisServer,
    chat_upstream: tuple[RecordingUpstream, ServerThread],
) -> None:
    fake, upstream = chat_upstream
    assert redis_server.command("FLUSHALL") == b"+OK"
    route = {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": upstream.url}
    config = write_config(tmp_path, [{**route, "inject_progress": True}], {"state_store": redis_server.url})
    ports = [_free_port(), _free_port()]
    command = ["--config", CONFIG_PATH, "--host", "127.0.0.1", "--port"]
    with (
        _container(dockerd, image, *command, str(ports[0]), config=config) as first,
        _container(dockerd, image, *command, str(ports[1]), config=config) as second,
    ):
        _wait_ready(dockerd, first, ports[0])
        _wait_ready(dockerd, second, ports[1])
        session = {"x-session-id": "shared-session"}
        assert _post(ports[0], "/p/v1/chat/completions", _chat("first request text"), session)[0] == 200
        assert _post(ports[1], "/p/v1/chat/completions", _chat("second"), session)[0] == 200
    systems = [orjson.loads(r.body)["messages"][0]["content"] for r in fake.requests]
    assert systems[0] == "sys"
    assert "Requests so far: 1." in systems[1] and "First request: first request text" in systems[1]


def _deltas(body: bytes) -> list[str]:
    """The content deltas of a Chat Completions stream, which must end with ``[DONE]``."""
    data = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]", data[-3:]
    chunks = [orjson.loads(d) for d in data[:-1]]
    return [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]


async def _expected_deltas(options: MockOptions, doc: dict[str, Any]) -> list[str]:
    headers = [("content-type", "application/json")]
    response = await MockUpstream(options).respond("POST", "/v1/chat/completions", headers, orjson.dumps(doc))
    return _deltas(b"".join([chunk async for chunk in response.chunks()]))


async def test_docker_stop_drains_a_running_stream(dockerd: Dockerd, image: str, tmp_path: Path) -> None:
    """SIGTERM mid-stream: the port closes at once, the stream still ends whole, the container exits 0."""
    options = MockOptions(delay=STREAM_DELAY_S, events=STREAM_EVENTS)
    doc = _chat("a slow stream through a stopping replica", stream=True)
    expected = await _expected_deltas(MockOptions(events=STREAM_EVENTS), doc)
    with ServerThread(MockApp(MockUpstream(options))) as upstream:
        route = {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": upstream.url}
        config = write_config(tmp_path, [route], {"shutdown_grace_period": GRACE_S})
        port = _free_port()
        command = ["--config", CONFIG_PATH, "--host", "127.0.0.1", "--port", str(port)]
        with _container(dockerd, image, *command, config=config) as name:
            _wait_ready(dockerd, name, port)
            drain = _stop_during_stream(dockerd, name, port, doc)
            state = _state(dockerd, name)
    assert _deltas(drain.body) == expected
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert drain.refused_after_s < 1.0, drain
    assert drain.refused_after_s < drain.stream_done_after_s < drain.exited_after_s < GRACE_S, drain
    dockerd.timings.update(
        drain_refused_after_s=drain.refused_after_s,
        drain_stream_done_after_s=drain.stream_done_after_s,
        drain_exited_after_s=drain.exited_after_s,
    )


@dataclass(frozen=True)
class Drain:
    """What a client saw of a replica stopped mid-stream; times in seconds after ``docker stop`` was issued."""

    body: bytes = field(repr=False)
    refused_after_s: float
    """First refused connection attempt (polled every 10 ms)."""
    stream_done_after_s: float
    exited_after_s: float
    """``docker stop`` returned: the container had exited."""


def _stop_during_stream(dockerd: Dockerd, name: str, port: int, doc: dict[str, Any]) -> Drain:
    """Start the stream, then ``docker stop`` the container after its first chunk."""
    first_chunk = threading.Event()
    received: list[bytes] = []
    done_at: list[float] = []

    def read_stream() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/p/v1/chat/completions", orjson.dumps(doc), {"content-type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            while chunk := response.read1(65536):
                received.append(chunk)
                first_chunk.set()
            done_at.append(time.monotonic())
        finally:
            first_chunk.set()
            conn.close()

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert first_chunk.wait(10)
    stop_at = time.monotonic()
    stopper = dockerd.popen("stop", "--time", str(GRACE_S + 10), name)
    while _accepts(port) and time.monotonic() - stop_at < 5:
        time.sleep(0.01)
    refused_at = time.monotonic()
    stopper.communicate(timeout=GRACE_S + 30)
    exited_at = time.monotonic()
    reader.join(30)
    assert stopper.returncode == 0 and done_at, (stopper.returncode, received[-1:])
    return Drain(b"".join(received), refused_at - stop_at, done_at[0] - stop_at, exited_at - stop_at)


@contextmanager
def _package_index(wheels: Path, root: Path) -> Iterator[str]:
    """A PEP 503 "simple" index of ``wheels`` on 127.0.0.1 (static files, served from a thread): an index the
    online build can reach where the real one cannot be."""
    for wheel in sorted(wheels.glob("*.whl")):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        with page.open("a") as out:
            out.write(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
        (root / "files").mkdir(exist_ok=True)
        shutil.copy(wheel, root / "files" / wheel.name)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # pip's requests are not the test's output


def test_online_style_build_from_a_package_index(dockerd: Dockerd, image: str, tmp_path: Path) -> None:
    """The build without WHEELHOUSE (what `docker build .` does): pip takes everything from an index.

    No registry or package index is reachable here, so the index is the wheelhouse served on 127.0.0.1
    (the build gets the host network to reach it) and the base is the local one; the Dockerfile's path is the
    one of the real online build. The image it makes answers `check` on its baked config.
    """
    with _package_index(WHEELHOUSE, tmp_path / "index") as index:
        started = time.monotonic()
        dockerd.run(
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={BASE_TAG}",
            "--build-arg",
            f"PIP_INDEX_URL={index}",
            "--tag",
            ONLINE_TAG,
            str(REPO),
            timeout=900,
            env={"DOCKER_BUILDKIT": "0"},
        )
        dockerd.timings["online_style_build_s"] = time.monotonic() - started
    checked = dockerd.run(
        "run", "--rm", "--pull", "never", "--network", "host", ONLINE_TAG, "check", "--config", CONFIG_PATH
    )
    routes = len(yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["models"])  # the image's config
    assert checked.stdout.startswith(f"{CONFIG_PATH}: {routes} route(s) OK\n"), checked.stdout
    assert "gpt-demo" in checked.stdout
