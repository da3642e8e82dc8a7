"""Runs a real CLI client against the proxy and an upstream, all inside a loopback-only network namespace.

One test = one shell script run as ``unshare -n sh -c 'ip link set lo up; ...'``: the script starts the
upstream (the scripted recording upstream of ``upstream.py``, or the proxy's embedded mock) and the proxy
on fixed 127.0.0.1 ports (the namespace is new, so nothing else can hold them and tests may run in
parallel), waits for both ``/healthz``, runs the client with a bounded ``timeout``, and stops the servers
by PID. The client can reach nothing but those two servers; its HOME is a fresh temp dir and every
opt-out it has (telemetry, updates, error reports, plugins) is set as well.

Everything the run produced stays in the test's tmp dir (script, config, logs, the record of upstream
requests) and ``Run.describe()`` puts the useful parts into assertion messages.

Missing prerequisites (the npm clients, root for ``unshare -n``) skip the test with the fix to apply
(run ``install-clients.sh``, run as root), and FAIL it when ``CI`` is set: a silently skipped e2e suite
in CI would hide exactly the breakage it exists to catch (``tests/prerequisites.py``).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests import prerequisites

REPO = Path(__file__).resolve().parents[2]
E2E = Path(__file__).resolve().parent
CLIENTS = Path(os.environ.get("E2E_CLIENTS_DIR", str(E2E / ".clients")))

UPSTREAM_PORT = 18001
PROXY_PORT = 18002
PROXY = f"http://127.0.0.1:{PROXY_PORT}"
UPSTREAM = f"http://127.0.0.1:{UPSTREAM_PORT}"

CLIENT_TIMEOUT = 120
"""Seconds the client may run (the clients answer in about a second against these servers)."""
SCRIPT_TIMEOUT = CLIENT_TIMEOUT + 60
"""Seconds for the whole namespace script: server start, client, shutdown."""

OPT_OUTS = {
    # Claude Code
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    # Codex has its opt-outs in config.toml (see codex_config).
}


CLIENT_PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli"}


def client_bin(name: str) -> Path:
    """The installed client ``name`` (``claude``, ``codex`` or ``gemini``); skips the test (fails it under CI)
    when missing."""
    path = CLIENTS / "bin" / name
    if not os.access(path, os.X_OK):
        prerequisites.missing(
            f"the {name} CLI ({CLIENT_PACKAGES[name]} from npm) at {path}",
            "bash tests/e2e/install-clients.sh (needs node and npm: apt-get install -y nodejs npm)",
        )
    return path


def require_netns() -> None:
    """Skips the test (fails it under CI) when a loopback-only network namespace cannot be made (root, iproute2)."""
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2"), ("timeout", "coreutils")):
        prerequisites.command(tool, f"{tool} ({package})", f"apt-get install -y {package} (root)")
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=20, check=False
    )
    if probe.returncode != 0:
        prerequisites.missing(
            f"a network namespace (`unshare -n` failed here as uid {os.getuid()}: {probe.stderr.strip()})",
            "run the tests as root",
        )


@dataclass
class Run:
    """What one namespace script produced."""

    workdir: Path
    rc: int | None
    """The client's exit code (None: the whole script was killed at ``SCRIPT_TIMEOUT``)."""
    stdout: str
    stderr: str
    script_output: str

    def _read(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def proxy_log(self) -> str:
        return self._read("proxy.log")

    @property
    def upstream_log(self) -> str:
        return self._read("upstream.log")

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request the recording upstream saw, in arrival order."""
        path = self.workdir / "requests.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def describe(self) -> str:
        """A summary for assertion messages: exit code, outputs, logs, and each upstream request in short."""
        lines = [f"client exit code {self.rc} (124: timed out after {CLIENT_TIMEOUT} s); files in {self.workdir}"]
        for label, text in (
            ("client stdout", self.stdout),
            ("client stderr", self.stderr),
            ("script", self.script_output),
            ("proxy log", self.proxy_log),
            ("upstream log", self.upstream_log),
        ):
            lines.append(f"--- {label} ---\n{_tail(text, 4000)}")
        lines.append("--- upstream requests ---")
        for r in self.requests:
            body = r["body"] if isinstance(r["body"], dict) else {}
            summary = {k: body[k] for k in ("model", "stream") if k in body}
            lines.append(f"#{r['index']} {r['method']} {r['path']}?{r['query']} {summary}")
        return "\n".join(lines)


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def write_proxy_config(
    workdir: Path, models: list[dict[str, Any]], client_keys: list[dict[str, Any]] | None = None
) -> Path:
    path = workdir / "config.yaml"
    server = {"host": "127.0.0.1", "shutdown_grace_period": 1, "log_level": "debug"}
    doc: dict[str, Any] = {"server": server, "models": models}
    if client_keys:
        doc["client_keys"] = client_keys
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: no vendor keys or base URLs leak in from the machine running the tests."""
    path = os.pathsep.join([str(CLIENTS / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb", "TMPDIR": str(home / "tmp")}
    env.update(OPT_OUTS)
    return env


def run_in_netns(
    workdir: Path,
    *,
    models: list[dict[str, Any]],
    client: Sequence[str | Path],
    client_env: Mapping[str, str],
    upstream: list[dict[str, Any]] | None,
    home_files: Mapping[str, str] | None = None,
    client_keys: list[dict[str, Any]] | None = None,
) -> Run:
    """Runs ``client`` against the proxy (configured with ``models``) and an upstream, in a new network namespace.

    ``upstream`` is the script for the recording upstream (one reply per POST, in order), or None for the
    proxy's embedded mock upstream (``llm-proxy mock-upstream``). ``home_files`` are written under HOME.
    """
    require_netns()
    home = workdir / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (workdir / "cwd").mkdir(exist_ok=True)
    for name, text in (home_files or {}).items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    config = write_proxy_config(workdir, models, client_keys)
    py = shlex.quote(sys.executable)
    helper = shlex.quote(str(E2E / "upstream.py"))
    if upstream is None:
        start_upstream = f"{py} -m llm_proxy mock-upstream --host 127.0.0.1 --port {UPSTREAM_PORT}"
    else:
        (workdir / "script.json").write_bytes(orjson.dumps(upstream, option=orjson.OPT_INDENT_2))
        start_upstream = (
            f"{py} {helper} --port {UPSTREAM_PORT} --script {shlex.quote(str(workdir / 'script.json'))} "
            f"--record {shlex.quote(str(workdir / 'requests.jsonl'))}"
        )
    client_cmd = " ".join(shlex.quote(str(a)) for a in client)
    w = shlex.quote(str(workdir))
    env = base_env(home)
    env.update(client_env)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    # The environment is written into the script too, so `unshare -n sh run.sh` replays a test by hand.
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    script = f"""
set -u
{exports}
ip link set lo up || {{ echo "e2e: cannot bring up lo" >&2; exit 90; }}
cd {w}/cwd
{start_upstream} > {w}/upstream.log 2>&1 &
UP=$!
{py} -m llm_proxy --config {shlex.quote(str(config))} --host 127.0.0.1 --port {PROXY_PORT} > {w}/proxy.log 2>&1 &
PX=$!
stop() {{
  kill $UP $PX 2>/dev/null
  i=0
  while kill -0 $UP 2>/dev/null || kill -0 $PX 2>/dev/null; do
    i=$((i+1)); [ $i -gt 50 ] && {{ kill -9 $UP $PX 2>/dev/null; break; }}; sleep 0.1
  done
}}
if ! {py} {helper} wait $UP {UPSTREAM}/healthz $PX {PROXY}/healthz; then
  echo "e2e: servers did not start (see upstream.log, proxy.log)" >&2; stop; exit 91
fi
timeout -k 5 {CLIENT_TIMEOUT} {client_cmd} > {w}/client.out 2> {w}/client.err < /dev/null
rc=$?
stop
exit $rc
"""
    (workdir / "run.sh").write_text(script)
    rc, output = _run_script(script, env)
    run = Run(
        workdir=workdir,
        rc=rc,
        stdout=(workdir / "client.out").read_text(errors="replace") if (workdir / "client.out").exists() else "",
        stderr=(workdir / "client.err").read_text(errors="replace") if (workdir / "client.err").exists() else "",
        script_output=output,
    )
    if rc is None:
        pytest.fail(f"e2e namespace script did not finish in {SCRIPT_TIMEOUT} s (killed)\n{run.describe()}")
    if run.rc in (90, 91):
        pytest.fail(f"e2e harness failure before the client ran:\n{run.describe()}", pytrace=False)
    return run


def _run_script(script: str, env: Mapping[str, str]) -> tuple[int | None, str]:
    """Runs the namespace script in its own process group; (exit code or None on timeout, its output).

    On timeout every process in the namespace (the shell, the servers, the client, which ``timeout`` puts in a
    process group of its own) is killed, so nothing outlives the test."""
    proc = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", script],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_namespace(proc.pid)
        output, _ = proc.communicate()
        return None, output
    return proc.returncode, output


def _kill_namespace(pid: int) -> None:
    """SIGKILL to every process in the network namespace of ``pid`` (the namespace this test created)."""
    try:
        netns = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return
    if netns == os.readlink("/proc/self/ns/net"):  # never the test runner's own namespace
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "net") == netns:
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


# --- the clients -------------------------------------------------------------------------------


def claude_code(
    workdir: Path,
    *,
    models: list[dict[str, Any]],
    prefix: str,
    model: str,
    prompt: str,
    upstream: list[dict[str, Any]] | None,
    extra_args: Sequence[str] = (),
    api_key: str = "dummy-key",
    client_keys: list[dict[str, Any]] | None = None,
) -> Run:
    """``claude -p PROMPT --output-format json`` with ``ANTHROPIC_BASE_URL`` at the proxy's ``prefix``."""
    argv: list[str | Path] = [client_bin("claude"), "-p", prompt, "--model", model, "--output-format", "json"]
    argv += list(extra_args)
    env = {"ANTHROPIC_BASE_URL": PROXY + prefix, "ANTHROPIC_API_KEY": api_key}
    return run_in_netns(workdir, models=models, client=argv, client_env=env, upstream=upstream, client_keys=client_keys)


def codex_config(model: str, base_url: str) -> str:
    """``$HOME/.codex/config.toml``: one provider at the proxy; no retries, update check, plugins or analytics."""
    return f"""model = "{model}"
model_provider = "proxy"
check_for_update_on_startup = false

[model_providers.proxy]
name = "llm-proxy"
base_url = "{base_url}"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false
remote_plugin = false
apps = false

[analytics]
enabled = false
"""


def codex(
    workdir: Path,
    *,
    models: list[dict[str, Any]],
    prefix: str,
    model: str,
    prompt: str,
    upstream: list[dict[str, Any]] | None,
    base_suffix: str = "/v1",
    api_key: str = "dummy-key",
    client_keys: list[dict[str, Any]] | None = None,
) -> Run:
    """``codex exec PROMPT`` with the provider at ``<proxy><prefix><base_suffix>``; the last message goes to
    last.txt (Codex appends ``/responses`` to its provider's ``base_url``)."""
    argv: list[str | Path] = [
        client_bin("codex"),
        "exec",
        "--skip-git-repo-check",
        "--output-last-message",
        workdir / "last.txt",
        prompt,
    ]
    env = {"OPENAI_API_KEY": api_key}
    files = {".codex/config.toml": codex_config(model, f"{PROXY}{prefix}{base_suffix}")}
    return run_in_netns(
        workdir,
        models=models,
        client=argv,
        client_env=env,
        upstream=upstream,
        home_files=files,
        client_keys=client_keys,
    )


GEMINI_SETTINGS = {
    # With a custom base URL, -p refuses any other auth type ("Invalid auth method selected.", exit 41).
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}
"""``$HOME/.gemini/settings.json``: API-key auth, no usage statistics, telemetry or update checks."""


def gemini_cli(
    workdir: Path,
    *,
    models: list[dict[str, Any]],
    prefix: str,
    model: str,
    prompt: str,
    upstream: list[dict[str, Any]] | None,
    api_key: str = "dummy-key",
) -> Run:
    """``gemini -p PROMPT -o json`` with ``GOOGLE_GEMINI_BASE_URL`` at the proxy's ``prefix``, a pinned model
    (``auto`` would first ask a classifier model), ``--skip-trust`` (else it refuses an untrusted directory) and
    ``--approval-mode yolo`` (its shell tool is offered in ``-p`` mode only then)."""
    argv: list[str | Path] = [client_bin("gemini"), "--skip-trust", "-m", model, "-o", "json", "-p", prompt]
    argv += ["--approval-mode", "yolo"]
    env = {"GOOGLE_GEMINI_BASE_URL": PROXY + prefix, "GEMINI_API_KEY": api_key}
    files = {".gemini/settings.json": orjson.dumps(GEMINI_SETTINGS).decode()}
    return run_in_netns(workdir, models=models, client=argv, client_env=env, upstream=upstream, home_files=files)
