"""The contenders: what each one is, how it is started, and where each kind of request goes.

A *kind* names what a load run sends: ``chat`` (OpenAI Chat to the fast mock), ``slow`` (streams from
the slow mock), ``pass:<dialect>`` (a streamed tool-call request passed through in that dialect) and
``<front>-><back>`` (a translated stream). A contender that cannot serve a kind returns None, and the
report shows "n/a" with the reason.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.processes import Layout, Proc, Processes, free_port, wait_ready
from llm_proxy.app.serve import CONFIG_ENV

_LITELLM_KEY = "sk-bench-7f3a9c2e41b84d0e9a6c5f1b2d8e4a70"
_OPERATION_PATH = {"openai-chat": "/v1/chat/completions", "claude": "/v1/messages", "openai-responses": "/v1/responses"}
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Upstreams:
    fast_port: int
    """Mock answering at once (streams: ``stream_events`` deltas without delay)."""
    slow_port: int
    """Mock that waits before each streamed event."""


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


def kind_dialect(kind: str) -> str:
    """The dialect a client uses for ``kind``."""
    if kind.startswith("pass:"):
        return kind[5:]
    if "->" in kind:
        return kind.split("->")[0]
    return "openai-chat"


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

    def start(self, procs: Processes, work: Path, up: Upstreams, layout: Layout, timeout: float) -> Running:
        port = free_port()
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

    def start(self, procs: Processes, work: Path, up: Upstreams, layout: Layout, timeout: float) -> Running:
        return Running(self, None, up.fast_port, None)

    def route(self, kind: str) -> tuple[str, str] | None:
        if "->" in kind:
            return None
        return _OPERATION_PATH[kind_dialect(kind)], "mock-gpt"

    def endpoint(self, running: Running, up: Upstreams, kind: str) -> Endpoint | None:
        found = super().endpoint(running, up, kind)
        if found is not None and kind == "slow":
            return Endpoint(found.url.replace(f":{up.fast_port}/", f":{up.slow_port}/"), *_rest(found))
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
}


def proxy_config(path: Path, up: Upstreams, server_settings: dict[str, object] | None = None) -> Path:
    """One prefix per kind: passthrough to the fast and the slow mock, and one per translation pair."""
    fast, slow = f"http://127.0.0.1:{up.fast_port}", f"http://127.0.0.1:{up.slow_port}"
    models: list[dict[str, object]] = [
        {"frontend_model_name": "bench", "frontend_base_url": "/openai", "backend_model_name": "mock-gpt",
         "backend_base_url": fast, "backend_api_key": "upstream-key"},
        {"frontend_model_name": "bench", "frontend_base_url": "/slow", "backend_model_name": "mock-gpt",
         "backend_base_url": slow, "backend_api_key": "upstream-key"},
    ]  # fmt: skip
    for pair, prefix in _PROXY_TRANSLATIONS.items():
        front, back = pair.split("->")
        models.append(
            {"frontend_model_name": "bench", "frontend_base_url": prefix, "frontend_dialect": front,
             "backend_model_name": "mock-model", "backend_base_url": fast, "backend_dialect": back,
             "backend_api_key": "upstream-key"}
        )  # fmt: skip
    # access log off and warnings only, as for every contender: the run measures proxying, not logging
    server = {"host": "127.0.0.1", "log_level": "warning", "access_log": False, **(server_settings or {})}
    path.write_text(yaml.safe_dump({"server": server, "models": models}, sort_keys=False))
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
        return "/openai" + _OPERATION_PATH[kind_dialect(kind)], "bench"


class LlmProxyObserved(LlmProxy):
    """llm-proxy with what an operator turns on: an access line per request as JSON (to the bench's log file).
    Metrics are always on; compared with ``llm-proxy`` it shows what observability costs (docs/observability.md)."""

    name = "llm-proxy-observed"
    label = "llm-proxy (uvicorn, JSON access log)"

    def launch(self, procs: Processes, work: Path, port: int, up: Upstreams, layout: Layout) -> Proc | None:
        settings: dict[str, object] = {"log_level": "info", "access_log": True, "log_format": "json"}
        config = proxy_config(work / f"{self.name}.yaml", up, settings)
        return procs.start(self.name, self.argv(config, port), layout.server_cpu, env=self.env(config), cwd=REPO)


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
    upstream slow {{ server 127.0.0.1:{slow}; keepalive 1024; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /healthz {{ return 200 "OK"; }}
        location /openai/ {{ proxy_pass http://fast/; include {prefix}/proxy.conf; }}
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
        conf.write_text(_NGINX_CONF.format(user=user, prefix=prefix, fast=up.fast_port, slow=up.slow_port, port=port))
        argv = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        return procs.start(self.name, argv, layout.server_cpu)

    def route(self, kind: str) -> tuple[str, str] | None:
        if "->" in kind:
            return None
        if kind == "slow":
            return "/slow/v1/chat/completions", "mock-gpt"
        return "/openai" + _OPERATION_PATH[kind_dialect(kind)], "mock-gpt"


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
        fast, slow = f"http://127.0.0.1:{up.fast_port}", f"http://127.0.0.1:{up.slow_port}"
        models = [
            {"model_name": "bench", "litellm_params": {"model": "openai/mock-gpt", "api_base": fast + "/v1",
                                                       "api_key": "upstream-key"}},
            {"model_name": "bench-slow", "litellm_params": {"model": "openai/mock-gpt", "api_base": slow + "/v1",
                                                            "api_key": "upstream-key"}},
            {"model_name": "bench-claude", "litellm_params": {"model": "anthropic/mock-claude", "api_base": fast,
                                                              "api_key": "upstream-key"}},
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
            "slow": ("/v1/chat/completions", "bench-slow"),
            "pass:openai-chat": ("/v1/chat/completions", "bench"),
            "pass:claude": ("/v1/messages", "bench-claude"),
            "claude->openai-chat": ("/v1/messages", "bench"),
            "openai-chat->claude": ("/v1/chat/completions", "bench-claude"),
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
    c.name: c for c in (Direct, LlmProxy, LlmProxyObserved, LlmProxyWorkers, LlmProxyGranian, Nginx, LiteLLM)
}
QUICK_CONTENDERS = ("direct", "llm-proxy", "nginx", "litellm")
FULL_CONTENDERS = ("direct", "llm-proxy", "llm-proxy-2w", "llm-proxy-granian", "nginx", "litellm")
