"""The contenders: what each one is, how it is started, and where each kind of request goes.

A *kind* names what a load run sends. To the fast upstream (``bench.fast_upstream``): ``chat`` (OpenAI Chat,
plain or streamed), ``claude`` (a streamed Claude message) and ``fast:<front>-><back>`` (a translated text
stream). To the Python mock, whose replies can carry tool calls: ``pass:<dialect>`` (a streamed tool-call
request passed through in that dialect) and ``<front>-><back>`` (translated). ``slow``: streams from the slow
mock. A contender that cannot serve a kind returns None, and the report shows "n/a" with the reason.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.processes import Layout, Proc, Processes, free_port, wait_machine_quiet, wait_ready
from llm_proxy.app.serve import CONFIG_ENV

_LITELLM_KEY = "sk-bench-7f3a9c2e41b84d0e9a6c5f1b2d8e4a70"
_OPERATION_PATH = {"openai-chat": "/v1/chat/completions", "claude": "/v1/messages", "openai-responses": "/v1/responses"}
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Upstreams:
    fast_port: int
    """``bench.fast_upstream``: fixed replies from bytes built at start (streams: ``stream_events`` deltas)."""
    mock_port: int
    """``llm-proxy mock-upstream`` answering at once: tool calls, every dialect (the translation scenarios)."""
    slow_port: int
    """Mock that waits before each streamed event."""

    def port(self, kind: str) -> int:
        """The upstream a kind's requests end at."""
        if kind == "slow":
            return self.slow_port
        return self.fast_port if upstream_is_fast(kind) else self.mock_port


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    model: str
    dialect: str
    """The dialect the client speaks on this endpoint."""
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Running:
    """A started contender: its process (None for the direct baseline) and where it listens."""

    contender: Contender
    proc: Proc | None
    port: int
    startup: float | None


def upstream_is_fast(kind: str) -> bool:
    return kind in ("chat", "claude") or kind.startswith("fast:")


def kind_dialect(kind: str) -> str:
    """The dialect a client uses for ``kind``."""
    kind = kind.removeprefix("fast:")
    if kind.startswith("pass:"):
        return kind[5:]
    if "->" in kind:
        return kind.split("->")[0]
    return "claude" if kind == "claude" else "openai-chat"


def _headers(dialect: str, key: str) -> tuple[tuple[str, str], ...]:
    base = (("content-type", "application/json"), ("authorization", f"Bearer {key}"))
    return (*base, ("anthropic-version", "2023-06-01")) if dialect == "claude" else base


class Contender(ABC):
    name: str
    label: str
    health_path = "/healthz"
    key = "bench-client-key"

    def unavailable(self, install: bool, work: Path) -> str | None:
        """Why this contender cannot run here (None: it can). May install it when ``install``."""
        return None

    @abstractmethod
    def version(self, work: Path) -> str: ...

    @abstractmethod
    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None: ...

    @abstractmethod
    def route(self, kind: str) -> tuple[str, str] | None:
        """(path, model) for ``kind``, or None if this contender does not do it."""

    def start(
        self, procs: Processes, work: Path, up: Upstreams, layout: Layout, timeout: float, quiet: float = 0.0
    ) -> Running:
        """Launch, and wait for the first 200 on the health path (at most ``timeout`` seconds); first, for up to
        ``quiet`` seconds, wait for the machine to be quiet, so that the launch time is this contender's and not
        that of the previous contender's tail."""
        port = free_port()
        if quiet:
            wait_machine_quiet(timeout=quiet)
        proc = self.launch(procs, work, port, up, layout)
        startup = None
        if proc is not None:
            startup = wait_ready(proc, f"http://127.0.0.1:{port}{self.health_path}", timeout)
        return Running(self, proc, port, startup)

    def endpoint(self, running: Running, up: Upstreams, kind: str) -> Endpoint | None:
        route = self.route(kind)
        if route is None:
            return None
        path, model = route
        dialect = kind_dialect(kind)
        return Endpoint(f"http://127.0.0.1:{running.port}{path}", model, dialect, _headers(dialect, self.key))


class Direct(Contender):
    """The mock upstream itself: the baseline every proxy adds to."""

    name = "direct"
    label = "direct (mock upstream)"

    def version(self, work: Path) -> str:
        return f"llm-proxy mock-upstream {importlib.metadata.version('llm-proxy')}"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        return None

    def start(
        self, procs: Processes, work: Path, up: Upstreams, layout: Layout, timeout: float, quiet: float = 0.0
    ) -> Running:
        return Running(self, None, up.fast_port, None)

    def route(self, kind: str) -> tuple[str, str] | None:
        if "->" in kind:
            return None
        return _OPERATION_PATH[kind_dialect(kind)], "mock-gpt"

    def endpoint(self, running: Running, up: Upstreams, kind: str) -> Endpoint | None:
        found = super().endpoint(running, up, kind)
        if found is not None and up.port(kind) != running.port:
            return Endpoint(found.url.replace(f":{running.port}/", f":{up.port(kind)}/"), *_rest(found))
        return found


def _rest(ep: Endpoint) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return ep.model, ep.dialect, ep.headers


# --------------------------------------------------------------------------------------------------
# llm-proxy
# --------------------------------------------------------------------------------------------------

_PROXY_TRANSLATIONS = {
    "claude->openai-chat": "/claude-to-chat",
    "openai-chat->claude": "/chat-to-claude",
    "openai-responses->openai-chat": "/responses-to-chat",
    "fast:claude->openai-chat": "/fast-claude-to-chat",
    "fast:openai-chat->claude": "/fast-chat-to-claude",
}
FAST_PAIRS = ("fast:claude->openai-chat", "fast:openai-chat->claude")
"""The translations measured on the fast upstream (text streams), against its passthrough streams."""
CLIENT_KEY = "lpk-bench-0123456789abcdef0123456789abcdef"


def proxy_config(
    path: Path, up: Upstreams, server_settings: dict[str, object] | None = None, *, features: bool = False
) -> Path:
    """One prefix per kind: passthrough to the fast upstream, the mock and the slow mock, and one per translation
    pair. ``features``: every route behind a client key, with a pool of two backends and a retry."""
    fast, mock = f"http://127.0.0.1:{up.fast_port}", f"http://127.0.0.1:{up.mock_port}"
    slow = f"http://127.0.0.1:{up.slow_port}"
    models: list[dict[str, object]] = [
        {"frontend_model_name": "bench", "frontend_base_url": "/openai", "backend_model_name": "fast-model",
         "backend_base_url": fast, "backend_api_key": "upstream-key"},
        {"frontend_model_name": "bench", "frontend_base_url": "/mock", "backend_model_name": "mock-gpt",
         "backend_base_url": mock, "backend_api_key": "upstream-key"},
        {"frontend_model_name": "bench", "frontend_base_url": "/slow", "backend_model_name": "mock-gpt",
         "backend_base_url": slow, "backend_api_key": "upstream-key"},
    ]  # fmt: skip
    for pair, prefix in _PROXY_TRANSLATIONS.items():
        front, back = pair.removeprefix("fast:").split("->")
        base = fast if pair.startswith("fast:") else mock
        models.append(
            {"frontend_model_name": "bench", "frontend_base_url": prefix, "frontend_dialect": front,
             "backend_model_name": "mock-model", "backend_base_url": base, "backend_dialect": back,
             "backend_api_key": "upstream-key"}
        )  # fmt: skip
    document: dict[str, object] = {"models": models}
    if features:
        for entry in models:
            backend = {k: entry.pop(k) for k in list(entry) if k.startswith("backend_")}
            entry["retries"] = 1
            entry["backends"] = [{"name": "a", **backend}, {"name": "b", **backend}]
        document["client_keys"] = [{"name": "bench", "key": CLIENT_KEY, "requests_per_minute": 100_000_000}]
    # access log off and warnings only, as for every contender: the run measures proxying, not logging
    server = {"host": "127.0.0.1", "log_level": "warning", "access_log": False, **(server_settings or {})}
    path.write_text(yaml.safe_dump({"server": server, **document}, sort_keys=False))
    return path


class LlmProxy(Contender):
    """llm-proxy as its CLI runs it (uvicorn, one process)."""

    name = "llm-proxy"
    label = "llm-proxy (uvicorn)"

    def version(self, work: Path) -> str:
        import uvicorn

        return f"llm-proxy {importlib.metadata.version('llm-proxy')} ({_git_commit()}), uvicorn {uvicorn.__version__}"

    def argv(self, config: Path, port: int) -> list[str]:
        return [sys.executable, "-m", "llm_proxy", "--config", str(config), "--port", str(port)]

    def env(self, config: Path) -> dict[str, str]:
        return {}

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        config = proxy_config(work / f"{self.name}.yaml", up)
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)

    def route(self, kind: str) -> tuple[str, str] | None:
        if kind == "slow":
            return "/slow/v1/chat/completions", "bench"
        if "->" in kind:
            prefix = _PROXY_TRANSLATIONS.get(kind)
            return None if prefix is None else (prefix + _OPERATION_PATH[kind_dialect(kind)], "bench")
        prefix = "/openai" if upstream_is_fast(kind) else "/mock"
        return prefix + _OPERATION_PATH[kind_dialect(kind)], "bench"


class LlmProxyNoLedger(LlmProxy):
    """llm-proxy as shipped but ``usage_store: none``: side by side with ``llm-proxy`` (whose default config keeps
    the usage ledger in ``usage.db`` beside the config), the ledger's cost."""

    name = "llm-proxy-no-ledger"
    label = "llm-proxy, no ledger"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        config = proxy_config(work / f"{self.name}.yaml", up, server_settings={"usage_store": "none"})
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


class LlmProxyBefore(LlmProxy):
    """llm-proxy from another checkout (``BENCH_BEFORE_SRC``: its ``src`` folder), to compare two versions of the
    code side by side in one run (``--contenders llm-proxy,llm-proxy-before``)."""

    name = "llm-proxy-before"
    label = "llm-proxy, other checkout"

    def version(self, work: Path) -> str:
        return f"llm-proxy from {os.environ.get('BENCH_BEFORE_SRC', '?')}"

    def env(self, config: Path) -> dict[str, str]:
        source = os.environ.get("BENCH_BEFORE_SRC")
        if not source:
            raise SystemExit("llm-proxy-before: set BENCH_BEFORE_SRC to the src folder of the checkout to compare")
        return {"PYTHONPATH": source}

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        # Without ``server:`` settings the other checkout may not know (``usage_store``, ...).
        config = proxy_config(work / f"{self.name}.yaml", up)
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


class LlmProxyRsgi(LlmProxy):
    """llm-proxy as its CLI runs it with ``server.interface: rsgi`` (granian's embedded server, one process)."""

    name = "llm-proxy-rsgi"
    label = "llm-proxy (granian RSGI)"

    def unavailable(self, install: bool, work: Path) -> str | None:
        return None if importlib.util.find_spec("granian") else "granian is not installed (pip install granian)"

    def version(self, work: Path) -> str:
        return f"{super().version(work).split(',')[0]}, granian {importlib.metadata.version('granian')}"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        config = proxy_config(work / f"{self.name}.yaml", up, {"interface": "rsgi"})
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


class LlmProxyFeatures(LlmProxy):
    """llm-proxy with every feature on: a client key checked and counted (rate limit) on every request, a pool of
    two backends with a retry, metrics, and a JSON access line per request (to the bench's log file)."""

    name = "llm-proxy-features"
    label = "llm-proxy (uvicorn, every feature on)"
    key = CLIENT_KEY

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        settings: dict[str, object] = {"log_level": "info", "access_log": True, "log_format": "json"}
        config = proxy_config(work / f"{self.name}.yaml", up, settings, features=True)
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


class LlmProxyObserved(LlmProxy):
    """llm-proxy with what an operator turns on: an access line per request as JSON (to the bench's log file).
    Metrics are always on; compared with ``llm-proxy`` it shows what observability costs (docs/observability.md)."""

    name = "llm-proxy-observed"
    label = "llm-proxy (uvicorn, JSON access log)"
    log_format = "json"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        settings: dict[str, object] = {"log_level": "info", "access_log": True, "log_format": self.log_format}
        config = proxy_config(work / f"{self.name}.yaml", up, settings)
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


class LlmProxyTextLog(LlmProxyObserved):
    """llm-proxy with the default access line (text) per request, to the bench's log file."""

    name = "llm-proxy-text-log"
    label = "llm-proxy (uvicorn, text access log)"
    log_format = "text"


class LlmProxyWorkers(LlmProxy):
    """The same app under ``uvicorn --workers 2``, built by the proxy's own worker factory (``llm_proxy.app.serve``)."""

    name = "llm-proxy-2w"
    label = "llm-proxy (uvicorn, 2 workers, bench shim)"

    def argv(self, config: Path, port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "llm_proxy.app.serve:app_from_env", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools", "--ws", "none",
            "--no-access-log", "--backlog", "4096", "--log-level", "warning", "--no-server-header",
        ]  # fmt: skip

    def env(self, config: Path) -> dict[str, str]:
        return {CONFIG_ENV: str(config)}


class LlmProxyGranian(LlmProxyWorkers):
    """The same app under granian's ASGI interface, from the same factory (the CLI offers uvicorn only)."""

    name = "llm-proxy-granian"
    label = "llm-proxy (granian ASGI, bench shim)"

    def unavailable(self, install: bool, work: Path) -> str | None:
        return None if shutil.which("granian") else "granian is not installed (pip install 'llm-proxy[granian]')"

    def version(self, work: Path) -> str:
        return f"{super().version(work).split(',')[0]}, granian {importlib.metadata.version('granian')}"

    def argv(self, config: Path, port: int) -> list[str]:
        return [
            "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--no-ws", "--backlog", "4096", "--backpressure", "4096",
            "--log-level", "warning", "--no-access-log", "llm_proxy.app.serve:app_from_env",
        ]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# the minimal proxies (bench.minimal_asgi, bench.minimal_rsgi)
# --------------------------------------------------------------------------------------------------


class MinimalAsgi(Contender):
    """The yardstick of proxy mode on llm-proxy's own stack: uvicorn raw ASGI + one aiohttp session, nothing else."""

    name = "minimal-asgi"
    label = "minimal proxy (uvicorn raw ASGI + aiohttp)"
    module = "bench.minimal_asgi"

    def version(self, work: Path) -> str:
        import uvicorn

        return f"{self.module}, uvicorn {uvicorn.__version__}, aiohttp {importlib.metadata.version('aiohttp')}"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        argv = [
            sys.executable, "-m", self.module, "--port", str(port), "--upstream", f"http://127.0.0.1:{up.fast_port}",
            "--mock", f"http://127.0.0.1:{up.mock_port}", "--slow", f"http://127.0.0.1:{up.slow_port}",
        ]  # fmt: skip
        return procs.start(self.name, argv, layout.server_cpu, cwd=REPO)

    def route(self, kind: str) -> tuple[str, str] | None:
        if "->" in kind:
            return None
        prefix = "/slow" if kind == "slow" else "" if upstream_is_fast(kind) else "/mock"
        return prefix + _OPERATION_PATH[kind_dialect(kind)], "bench"


class MinimalRsgi(MinimalAsgi):
    """The same minimal proxy on granian's RSGI interface (a supervisor and one worker process)."""

    name = "minimal-rsgi"
    label = "minimal proxy (granian RSGI + aiohttp)"
    module = "bench.minimal_rsgi"

    def unavailable(self, install: bool, work: Path) -> str | None:
        return None if importlib.util.find_spec("granian") else "granian is not installed (pip install granian)"

    def version(self, work: Path) -> str:
        aiohttp = importlib.metadata.version("aiohttp")
        return f"{self.module}, granian {importlib.metadata.version('granian')}, aiohttp {aiohttp}"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "no git"
    return out.stdout.decode().strip() or "no git"


# --------------------------------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------------------------------

_NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 32m;
    client_body_buffer_size 64k;
    keepalive_requests 1000000;
    upstream fast {{ server 127.0.0.1:{fast}; keepalive 512; }}
    upstream mock {{ server 127.0.0.1:{mock}; keepalive 512; }}
    upstream slow {{ server 127.0.0.1:{slow}; keepalive 1024; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /healthz {{ return 200 "OK"; }}
        location /openai/ {{ proxy_pass http://fast/; include {prefix}/proxy.conf; }}
        location /mock/ {{ proxy_pass http://mock/; include {prefix}/proxy.conf; }}
        location /slow/ {{ proxy_pass http://slow/; include {prefix}/proxy.conf; }}
    }}
}}
"""

_NGINX_PROXY = """\
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Authorization "Bearer upstream-key";
proxy_buffering off;
proxy_read_timeout 600s;
"""


class Nginx(Contender):
    """The reference reverse proxy: no translation, no model rewrite, ``proxy_buffering off``."""

    name = "nginx"
    label = "nginx (proxy_buffering off)"

    def unavailable(self, install: bool, work: Path) -> str | None:
        if shutil.which("nginx"):
            return None
        if install and _apt_install("nginx", work):
            return None
        return "nginx is not installed (apt-get install -y nginx)"

    def version(self, work: Path) -> str:
        out = subprocess.run(["nginx", "-v"], capture_output=True, timeout=10)
        return out.stderr.decode().strip().replace("nginx version: ", "")

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        prefix = (work / "nginx").resolve()
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "proxy.conf").write_text(_NGINX_PROXY)
        # as root the workers would switch to "nobody"; keep them the current user, like the master
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        text = _NGINX_CONF.format(
            user=user, prefix=prefix, fast=up.fast_port, mock=up.mock_port, slow=up.slow_port, port=port
        )
        conf.write_text(text)
        argv = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        return procs.start(self.name, argv, layout.server_cpu)

    def route(self, kind: str) -> tuple[str, str] | None:
        if "->" in kind:
            return None
        if kind == "slow":
            return "/slow/v1/chat/completions", "mock-gpt"
        prefix = "/openai" if upstream_is_fast(kind) else "/mock"
        return prefix + _OPERATION_PATH[kind_dialect(kind)], "mock-gpt"


def _apt_install(package: str, work: Path) -> bool:
    log = work / f"apt-{package}.log"
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                ["apt-get", "install", "-y", "-q", package], stdout=out, stderr=subprocess.STDOUT, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0 and shutil.which(package) is not None


# --------------------------------------------------------------------------------------------------
# LiteLLM
# --------------------------------------------------------------------------------------------------


class LiteLLM(Contender):
    """LiteLLM proxy in its own venv under the work dir, pointed at the same mocks."""

    name = "litellm"
    label = "LiteLLM proxy"
    health_path = "/health/liveliness"
    key = _LITELLM_KEY

    def venv(self, work: Path) -> Path:
        # a dot-directory: mypy (run over bench/) does not descend into it
        return work / ".litellm-venv"

    def unavailable(self, install: bool, work: Path) -> str | None:
        exe = self.venv(work) / "bin" / "litellm"
        if exe.exists():
            return None
        if not install:
            return f"LiteLLM is not installed in {self.venv(work)} (run without --no-install)"
        log = work / "litellm-install.log"
        with log.open("ab") as out:
            try:
                subprocess.run([sys.executable, "-m", "venv", str(self.venv(work))], check=True, timeout=120)
                subprocess.run(
                    [str(self.venv(work) / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
                    stdout=out, stderr=subprocess.STDOUT, timeout=900, check=True,
                )  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:
                return f"installing LiteLLM failed ({exc}); see {log}"
        return None if exe.exists() else f"installing LiteLLM failed; see {log}"

    def version(self, work: Path) -> str:
        python = self.venv(work) / "bin" / "python"
        code = "import importlib.metadata as m; print(m.version('litellm'))"
        out = subprocess.run([str(python), "-c", code], capture_output=True, timeout=60)
        return f"litellm {out.stdout.decode().strip()}"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        fast, mock = f"http://127.0.0.1:{up.fast_port}", f"http://127.0.0.1:{up.mock_port}"
        slow = f"http://127.0.0.1:{up.slow_port}"
        models = [
            {"model_name": "bench", "litellm_params": {"model": "openai/mock-gpt", "api_base": fast + "/v1",
                                                       "api_key": "upstream-key"}},
            {"model_name": "bench-slow", "litellm_params": {"model": "openai/mock-gpt", "api_base": slow + "/v1",
                                                            "api_key": "upstream-key"}},
            {"model_name": "bench-claude", "litellm_params": {"model": "anthropic/mock-claude", "api_base": fast,
                                                              "api_key": "upstream-key"}},
            {"model_name": "bench-mock", "litellm_params": {"model": "openai/mock-gpt", "api_base": mock + "/v1",
                                                            "api_key": "upstream-key"}},
            {"model_name": "bench-mock-claude", "litellm_params": {"model": "anthropic/mock-claude",
                                                                   "api_base": mock, "api_key": "upstream-key"}},
        ]  # fmt: skip
        config = {
            "model_list": models,
            "litellm_settings": {"drop_params": True},
            "general_settings": {"master_key": _LITELLM_KEY},
        }
        cfg = work / "litellm.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        # the same as llm-proxy: no access log, warnings only
        log_config = work / "litellm-logging.json"
        log_config.write_text(json.dumps(_QUIET_LOGGING))
        argv = [
            str(self.venv(work) / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1",
            "--port", str(port), "--log_config", str(log_config),
        ]  # fmt: skip
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true"}
        return procs.start(self.name, argv, layout.server_cpu, env=env, cwd=work)

    def route(self, kind: str) -> tuple[str, str] | None:
        routes = {
            "chat": ("/v1/chat/completions", "bench"),
            "claude": ("/v1/messages", "bench-claude"),
            "slow": ("/v1/chat/completions", "bench-slow"),
            "pass:openai-chat": ("/v1/chat/completions", "bench-mock"),
            "pass:claude": ("/v1/messages", "bench-mock-claude"),
            "claude->openai-chat": ("/v1/messages", "bench-mock"),
            "openai-chat->claude": ("/v1/chat/completions", "bench-mock-claude"),
            "fast:claude->openai-chat": ("/v1/messages", "bench"),
            "fast:openai-chat->claude": ("/v1/chat/completions", "bench-claude"),
        }
        return routes.get(kind)


_QUIET_LOGGING: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "WARNING"},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["default"], "level": "WARNING", "propagate": False},
    },
}

CONTENDERS: dict[str, type[Contender]] = {
    c.name: c
    for c in (
        Direct, LlmProxy, LlmProxyNoLedger, LlmProxyBefore, LlmProxyRsgi, LlmProxyFeatures, LlmProxyObserved,
        LlmProxyTextLog, LlmProxyWorkers, LlmProxyGranian, MinimalAsgi, MinimalRsgi, Nginx, LiteLLM,
    )
}  # fmt: skip
QUICK_CONTENDERS = ("direct", "llm-proxy", "llm-proxy-rsgi", "minimal-asgi", "minimal-rsgi", "nginx")
FULL_CONTENDERS = (
    "direct", "llm-proxy", "llm-proxy-rsgi", "llm-proxy-features", "minimal-asgi", "minimal-rsgi", "nginx", "litellm",
)  # fmt: skip
