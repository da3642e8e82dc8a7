"""The command line as a user runs it: real processes, real signals."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import write_config

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_proxy", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError("server did not become healthy")


@contextmanager
def process(*args: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "llm_proxy", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_healthy(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"frontend_model_name": "m", "frontend_base_url": "x", "backend_base_url": "mock://"},
            "models[0] (m): field `frontend_base_url`: must start with `/` (got 'x')",
        ),
        (
            {"frontend_model_name": "m", "frontend_base_url": "/x", "backend_base_url": "mock://", "typo": 1},
            "models[0] (m): unknown field `typo`",
        ),
        (
            {
                "frontend_model_name": "m",
                "frontend_base_url": "/x",
                "backend_base_url": "mock://",
                "backend_api_key": "${NOPE_UNSET}",
            },
            "models[0] (m): field `backend_api_key`: environment variable NOPE_UNSET is not set",
        ),
    ],
)
def test_config_errors_exit_2_with_one_clear_line(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    path = write_config(tmp_path, [entry])
    for command in (["--config", str(path)], ["check", "--config", str(path)]):
        result = run_cli(*command)
        assert result.returncode == 2
        assert result.stderr.startswith(f"llm-proxy: config error: {path}: {message}")
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_check_prints_route_table_with_masked_keys(tmp_path: Path) -> None:
    entry = {
        "frontend_model_name": "gpt",
        "frontend_base_url": "/openai",
        "backend_base_url": "https://api.example.com",
        "backend_model_name": "gpt-4o",
        "backend_api_key": "${KEY}",
        "frontend_dialect": "claude",
        "backend_dialect": "openai-chat",
    }
    path = write_config(tmp_path, [entry])
    result = run_cli("check", "--config", str(path), env={"KEY": "sk-proj-secretsecret3f9a"})
    assert result.returncode == 0, result.stderr
    assert "secretsecret" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: 1 route(s) OK"
    assert lines[1].split() == ["PREFIX", "MODEL", "BACKEND", "BACKEND", "MODEL", "MODE", "AUTH"]
    assert lines[2].split() == [
        "/openai",
        "gpt",
        "https://api.example.com",
        "gpt-4o",
        "claude",
        "->",
        "openai-chat",
        "Authorization:",
        "Bearer",
        "sk-…3f9a",
    ]


def test_demo_config_answers_and_sigterm_lets_streams_finish(tmp_path: Path) -> None:
    mock_port, proxy_port = free_port(), free_port()
    entry = {
        "frontend_model_name": "slow",
        "frontend_base_url": "/slow",
        "backend_base_url": f"http://127.0.0.1:{mock_port}",
    }
    path = write_config(tmp_path, [entry], {"shutdown_grace_period": 10})
    with process("mock-upstream", "--port", str(mock_port), "--delay-ms", "100", "--events", "10", port=mock_port):
        with process("--config", str(path), "--port", str(proxy_port), port=proxy_port) as proxy:
            conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
            body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi there"}]}
            conn.request("POST", "/slow/v1/chat/completions", body=json.dumps(body))
            resp = conn.getresponse()
            first = resp.read1(65536)
            assert first.startswith(b"data: ")
            proxy.send_signal(signal.SIGTERM)
            rest = resp.read()
            conn.close()
            assert (first + rest).rstrip().endswith(b"data: [DONE]")
            assert proxy.wait(15) == 0


def test_demo_config_readme_curl() -> None:
    port = free_port()
    with process("--config", str(REPO / "config" / "demo.yaml"), "--port", str(port), port=port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = {"model": "gpt-demo", "messages": [{"role": "user", "content": "hello"}]}
        conn.request(
            "POST", "/openai/v1/chat/completions", body=json.dumps(body), headers={"content-type": "application/json"}
        )
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        conn.close()
    assert resp.status == 200
    assert doc["model"] == "mock-gpt"
    assert doc["choices"][0]["message"]["content"] == "mock reply: hello"
    assert doc["choices"][0]["finish_reason"] == "stop"


def test_python_dash_m_and_console_script_agree() -> None:
    result = run_cli("--version", "--config", "x")
    assert result.returncode == 0 and result.stdout.startswith("llm-proxy ")


def test_two_workers_serve_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    entry = {"frontend_model_name": "m", "frontend_base_url": "/o", "backend_base_url": "mock://"}
    path = write_config(tmp_path, [entry], {"workers": 2})
    with process("--config", str(path), "--port", str(port), port=port) as proxy:
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            conn.request("POST", "/o/v1/chat/completions", body=json.dumps(body))
            resp = conn.getresponse()
            assert (
                resp.status == 200 and json.loads(resp.read())["choices"][0]["message"]["content"] == "mock reply: hi"
            )
            conn.close()
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(15) == 0


def test_help_lists_every_command_with_one_line() -> None:
    from llm_proxy.app.cli import COMMANDS

    result = run_cli("--help")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    start = lines.index("commands:")
    listed = lines[start + 1 : start + 1 + len(COMMANDS)]
    expected = ["serve", "check", "mock-upstream", "keys", "usage"]
    assert [line.split()[0] for line in listed] == expected == list(COMMANDS)
    for line, (name, text) in zip(listed, COMMANDS.items(), strict=True):
        assert line.split(None, 1)[1].strip() == text, name
    assert lines[start + 1 + len(COMMANDS)] == ""  # one line each, nothing wrapped
    for name in COMMANDS:  # each listed command exists and has its own help
        assert run_cli(name, "--help").returncode == 0, name


def test_no_arguments_prints_the_help() -> None:
    bare = run_cli()
    assert bare.returncode == 0
    assert bare.stdout == run_cli("--help").stdout
    assert "commands:\n  serve" in bare.stdout


def test_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("--config", str(REPO / "config" / "demo.yaml"), "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr == f"llm-proxy: cannot listen on 127.0.0.1:{port}: address already in use\n"
    assert result.stdout == ""
