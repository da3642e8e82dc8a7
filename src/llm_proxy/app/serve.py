"""Running an ASGI app on a real server: the only modules that know which server that is (this one, ``rsgi``).

uvicorn with httptools and uvloop is the default (measured in ``bench/``); ``server.interface: rsgi``
hands the same app to granian through ``llm_proxy.app.rsgi``. The proxy app is plain ASGI, so swapping
the server means changing these modules only.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import TextIO

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from llm_proxy.app.exchange import Exchange, Receive, Scope, Send, read_body
from llm_proxy.errors import ListenError
from llm_proxy.observe.held_lines import HoldingStreamHandler
from llm_proxy.observe.logs import TEXT_FORMAT, RequestIdFilter, formatter
from llm_proxy.observe.metrics import MULTIPROC_ENV
from llm_proxy.observe.redact import Redactor
from llm_proxy.upstream.mock import MockUpstream

MOCK_MAX_BODY = 256 << 20
log = logging.getLogger("llm_proxy.app.serve")
CONFIG_ENV = "LLM_PROXY_CONFIG"
"""Worker processes find the config file here (uvicorn workers import the app by name)."""
YOUNG_GC_THRESHOLD = 10_000
"""Container objects allocated (net of those freed) between two collections of the young generation; Python's
default is 700. A request in flight holds a few hundred (tasks, frames, headers, the parsed body): at 700, under a
few dozen concurrent requests, a young collection ran every ~10 requests and moved the objects of the requests
in flight to older generations, whose collections then walked them again — about 8 % of the CPU of a loaded
proxy. Reference cycles, the only garbage these collections find, are rare on the request path."""


def settle_heap() -> None:
    """Start-up is over: the objects made so far (modules, config, routes — tens of thousands) live as long as
    the process, so ``gc.freeze`` takes them out of every later collection (a full one walked them all), and
    the young generation is collected less often (``YOUNG_GC_THRESHOLD``). Called once the app is built, before
    the server serves (``run``) or in each worker process (``app_from_env``)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


def app_from_env() -> object:
    """The proxy app for a worker process: built from the config file named by ``LLM_PROXY_CONFIG``."""
    from llm_proxy.app.server import ProxyApp
    from llm_proxy.config import load_config

    config = load_config(os.environ[CONFIG_ENV])
    redactor = Redactor(config.secrets)
    # a spawned worker starts bare
    configure_logging(config.server.log_level, config.server.access_log, redactor, config.server.log_format)
    app = ProxyApp(config, redactor=redactor)
    settle_heap()
    return app


def run(
    app: object,
    *,
    host: str,
    port: int,
    grace: float,
    log_level: str = "info",
    workers: int = 1,
    config_path: str = "",
    interface: str = "asgi",
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``grace`` seconds to finish.

    ``interface="rsgi"`` serves on granian instead (``llm_proxy.app.rsgi``), with the same arguments.

    With ``workers > 1``, uvicorn's supervisor runs that many processes on one socket, each building the
    app from ``config_path`` (``app`` is then not used). Raises ``ListenError`` before anything starts
    when ``host:port`` cannot be bound.
    """
    if interface == "rsgi":
        from llm_proxy.app import rsgi

        rsgi.run(app, host=host, port=port, grace=grace, log_level=log_level, workers=workers, config_path=config_path)
        return
    sock = listen_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    log.info("listening on http://%s:%d", f"[{bound_host}]" if ":" in bound_host else bound_host, bound_port)
    if workers > 1:
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    config = uvicorn.Config(
        "llm_proxy.app.serve:app_from_env" if workers > 1 else app,  # type: ignore[arg-type]
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=log_level,
        timeout_graceful_shutdown=max(0, round(grace)),
        backlog=4096,
        server_header=False,
        proxy_headers=False,
    )
    if workers > 1:
        with _metrics_directory():
            Multiprocess(config, sockets=[sock]).run()
    else:
        settle_heap()
        _Server(config).run(sockets=[sock])


def listen_socket(host: str, port: int) -> socket.socket:
    """The bound listen socket, made before the server starts.

    uvicorn binds only after the app's startup and then logs "startup complete" followed by the bind
    error; binding first turns a port in use into one clear message and no startup at all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise ListenError(f"cannot listen on {where}: {(exc.strerror or str(exc)).lower()}") from None
    sock.set_inheritable(True)  # worker processes serve on this socket
    return sock


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """A private directory for the workers' metric files (prometheus_client multiprocess mode), removed at exit.

    Set in the environment before the workers start: each one imports prometheus_client afresh and so
    writes its values there, and any worker's ``/metrics`` reads them all."""
    path = tempfile.mkdtemp(prefix="llm-proxy-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the process would exit with
        # -SIGTERM even when every stream finished; a proxy that drained cleanly exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def configure_logging(
    level: str,
    access_log: bool = True,
    redactor: Redactor | None = None,
    log_format: str = "text",
    stream: TextIO | None = None,
) -> None:
    """Log lines to stderr (or ``stream``), as text or one JSON object per line, each with the request id when
    there is one; with a ``redactor``, every line has the configured secrets masked.

    A root logger without handlers gets the proxy's own (``observe.held_lines``: access lines written in
    batches); one that has handlers keeps them, with the proxy's format."""
    root = logging.getLogger()
    for handler in root.handlers:  # configured again: what is held goes out first, in the format it was made in
        handler.flush()
    if not root.handlers:  # as ``logging.basicConfig``, which leaves a root that has handlers alone
        own = HoldingStreamHandler(stream)
        logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=TEXT_FORMAT, handlers=[own])
        atexit.register(own.flush)  # the last resort, when nothing flushed it before the exit
    for handler in root.handlers:
        handler.setFormatter(formatter(log_format, redactor))
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
    logging.getLogger("uvicorn.error").addFilter(_quiet_aborts)
    # Neither format shows the thread or the process: records need not look them up (a thread-name lookup,
    # a getpid system call and the multiprocessing module's process name, per line).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+
        logging.logAsyncioTasks = False
    if not access_log:
        logging.getLogger("llm_proxy.access").setLevel(logging.WARNING)


def _quiet_aborts(record: logging.LogRecord) -> bool:
    # The proxy aborts a response on purpose when its upstream fails mid-stream (``Exchange.abort``): it
    # returns without ending the body, uvicorn closes the connection and says so. The proxy has already
    # logged the reason in one warning line.
    return record.getMessage() != "ASGI callable returned without completing response."


class MockApp:
    """The embedded mock upstream served over HTTP (``llm-proxy mock-upstream``)."""

    def __init__(self, mock: MockUpstream) -> None:
        self.mock = mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                reply = {
                    "lifespan.startup": "lifespan.startup.complete",
                    "lifespan.shutdown": "lifespan.shutdown.complete",
                }
                await send({"type": reply[message["type"]]})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        ex = Exchange(scope, send)
        if scope["path"] == "/healthz":
            await ex.respond(200, "text/plain", b"OK")
            return
        body = await read_body(receive, MOCK_MAX_BODY)
        if body is None:
            return
        path = ex.path + ("?" + ex.query.decode("latin-1") if ex.query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in ex.raw_headers]
        response = await self.mock.respond(ex.method, path, headers, body)
        await ex.start(response.status, response.raw_headers)
        async for chunk in response.chunks():
            await ex.body(chunk)
        await ex.end()
