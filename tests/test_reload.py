"""Hot reload under load: a real proxy process, its config file changed while requests keep coming."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import yaml

from tests.servers import ends_on_sigterm
from tests.test_cli import free_port, wait_healthy


def _write(path: Path, version: str, *, extra_route: bool = False, port: int = 8080) -> None:
    models = [
        {
            "frontend_model_name": "m",
            "frontend_base_url": "/a",
            "backend_base_url": "mock://",
            "backend_model_name": f"served-by-{version}",
        }
    ]
    if extra_route:
        models.append({"frontend_model_name": "new", "frontend_base_url": "/b", "backend_base_url": "mock://"})
    config = {"server": {"watch_config": True, "port": port, "access_log": False}, "models": models}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config))
    os.replace(tmp, path)  # as editors and Kubernetes ConfigMaps do: a rename, never a half-written file


def _ask(port: int, path: str = "/a/v1/chat/completions", model: str = "m") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    conn.request("POST", path, body=orjson.dumps(body), headers={"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, str(json.loads(data).get("model", "")) if resp.status == 200 else data.decode()


def _until(predicate: Callable[[], bool], what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached in {timeout:g} s: {what}; proxy log:\n{log.read_text()[-3000:]}")


def test_reload_under_load_loses_no_request(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    _write(config, "v1", port=port)
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llm_proxy", "--config", str(config)], stderr=log, stdout=log)
        with ends_on_sigterm(proc, 15):
            wait_healthy(port, proc)
            seen: list[tuple[int, str]] = []
            per_thread: list[list[str]] = [[], [], []]
            stop = threading.Event()

            def load(mine: list[str]) -> None:
                while not stop.is_set() and len(seen) < 50_000:  # bounded; the test stops them long before
                    answer = _ask(port)
                    seen.append(answer)
                    mine.append(answer[1])

            workers = [threading.Thread(target=load, args=(mine,)) for mine in per_thread]
            for worker in workers:
                worker.start()
            try:
                _until(lambda: len(seen) > 30, "first requests", log_path)
                _write(config, "v2", port=port)  # picked up by the file watcher
                _until(lambda: seen[-1][1] == "served-by-v2", "v2 served", log_path)
                config.write_text("models: [this is not a model entry]\n")  # invalid: the running config stays
                time.sleep(0.6)
                count = len(seen)
                _until(lambda: len(seen) > count + 30, "requests after the invalid file", log_path)
                _write(config, "v3", extra_route=True, port=port + 1)  # a server setting changes too
                proc.send_signal(signal.SIGHUP)  # a signal reloads as well (the watcher may get there first)
                _until(lambda: seen[-1][1] == "served-by-v3", "v3 served", log_path)
                assert _ask(port, "/b/v1/chat/completions", "new")[0] == 200  # the new route is served
            finally:
                stop.set()
                for worker in workers:
                    worker.join(15)
    statuses = Counter(status for status, _ in seen)
    assert statuses == {200: len(seen)} and len(seen) > 100
    # Versions only move forward: a request sent after a reload is served by the new config, whole.
    order = {"served-by-v1": 1, "served-by-v2": 2, "served-by-v3": 3}
    for served in per_thread:
        assert all(order[a] <= order[b] for a, b in zip(served, served[1:], strict=False))
    assert {model for _, model in seen} == set(order)
    text = log_path.read_text()
    assert text.count("config reload failed, the running config stays") >= 1
    assert "server settings need a restart to change: port" in text
    assert "Traceback" not in text
