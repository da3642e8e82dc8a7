"""Serving the proxy on granian's RSGI interface (``server.interface: rsgi``).

The proxy app speaks ASGI; ``RsgiApp`` carries each RSGI call into it, so both interfaces run the same
request path:

- the request: granian's scope becomes an ASGI scope; ``receive`` hands over the body (in one message
  when its ``content-length`` is known and small, else chunk by chunk), then waits for the client to go
  away (``http.disconnect``), which is how the app notices a disconnect mid-stream;
- the response: ``http.response.start`` is held until the first body message; a body that ends in that
  message goes out in one ``response_bytes``, anything longer through ``response_stream``, a chunk per
  message, each write awaited (backpressure). Writes after the client left are dropped: the app is told
  through ``receive``;
- lifespan: ``startup``/``shutdown`` drive the app's ASGI lifespan (``__rsgi_init__``/``__rsgi_del__``
  call them when granian runs the app in a worker process).

Known differences from uvicorn: granian passes the path already percent-decoded (no ``raw_path``), and it
has no way to abort a streamed response, so a response the app gives up on (``Exchange.abort``) ends with
a clean end of the chunked body instead of a cut connection.

``run`` serves one process in this one (granian's embedded server: no supervisor process), or ``workers``
granian worker processes that build the app from the config file, as ``serve.run`` does for uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, cast

from llm_proxy.app.exchange import Message, Receive, Scope, Send
from llm_proxy.errors import ListenError

log = logging.getLogger("llm_proxy.app.rsgi")
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ONE_SHOT_BODY = 1 << 20
"""Bodies up to this size (by ``content-length``) are read in one call; larger or unsized ones chunk by chunk,
so that the app's body limit stops them early."""
_DISCONNECT: Message = {"type": "http.disconnect"}


def _closed_errors() -> tuple[type[BaseException], ...]:
    from granian._granian import RSGIProtocolClosed, RSGIProtocolError

    return (RSGIProtocolClosed, RSGIProtocolError)


class _Response:
    """The ASGI ``send`` of one request, written to granian's protocol object."""

    __slots__ = ("proto", "status", "headers", "stream", "streamed", "complete", "closed", "_errors")

    def __init__(self, proto: Any, errors: tuple[type[BaseException], ...]) -> None:
        self.proto = proto
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.stream: Any = None
        self.streamed = False
        """A streamed body was started (its transport is let go of when the app returns)."""
        self.complete = False
        self.closed = False
        self._errors = errors

    async def send(self, message: Message) -> None:
        if self.complete or self.closed:
            return
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        try:
            if self.stream is None:
                if not more:
                    self.complete = True
                    self.proto.response_bytes(self.status, self.headers, body)
                    return
                self.stream = self.proto.response_stream(self.status, self.headers)
                self.streamed = True
            if body:
                await self.stream.send_bytes(body)
        except self._errors:
            self.closed = True  # the client left; the app learns it from ``receive``
            return
        if not more:
            self.complete = True


class RsgiApp:
    """An ASGI app served over RSGI."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self._errors: tuple[type[BaseException], ...] = ()
        self._lifespan: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._outbox: asyncio.Queue[Message] | None = None
        self.started = False

    # lifespan -------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the app's lifespan startup; raises when the app reports it failed."""
        if self.started:
            return
        self._errors = _closed_errors()
        self._inbox, self._outbox = asyncio.Queue(), asyncio.Queue()
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._lifespan = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply.get("type") != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {reply.get('message', reply.get('type'))}")
        self.started = True

    async def shutdown(self) -> None:
        """Run the app's lifespan shutdown (once; nothing when it never started)."""
        if not self.started or self._inbox is None:
            return
        self.started = False
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await self._reply()
        if reply.get("type") != "lifespan.shutdown.complete":
            log.error("lifespan shutdown failed: %s", reply.get("message", reply.get("type")))
        if self._lifespan is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._lifespan

    async def _reply(self) -> Message:
        assert self._outbox is not None and self._lifespan is not None
        got = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait((got, self._lifespan), return_when=asyncio.FIRST_COMPLETED)
        if got.done():
            return got.result()
        got.cancel()
        exc = self._lifespan.exception()
        return {"type": "lifespan.failed", "message": repr(exc) if exc else "the app returned"}

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # granian's worker process calls this before its loop runs; the embedded server (``run``) has
        # started the app already
        if not loop.is_running():
            loop.run_until_complete(self.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if not loop.is_running():
            loop.run_until_complete(self.shutdown())

    # requests -------------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        pairs: list[tuple[str, str]] = scope.headers.items()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
        host, _, port = scope.client.rpartition(":")
        server_host, _, server_port = scope.server.rpartition(":")
        asgi_scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": scope.path,
            "query_string": scope.query_string.encode("latin-1"),
            "headers": headers,
            "client": (host, int(port or 0)),
            "server": (server_host, int(server_port or 0)),
        }
        length = scope.headers.get("content-length")
        one_shot = length is not None and length.isdigit() and int(length) <= ONE_SHOT_BODY
        errors = self._errors or _closed_errors()
        receive = _receiver(proto, one_shot, errors)
        response = _Response(proto, errors)
        await self.app(asgi_scope, receive, response.send)
        # granian ends a streamed body when its transport object is freed: let go of it now, whatever else may
        # still hold this response (a reference cycle would keep the body open until a garbage collection).
        response.stream = None
        if not response.complete and not response.closed and not response.streamed:
            # the app answered nothing (a client that left before its body was read): granian needs a reply
            with contextlib.suppress(*errors):
                proto.response_empty(response.status or 500, response.headers)


def _receiver(proto: Any, one_shot: bool, errors: tuple[type[BaseException], ...]) -> Receive:
    """The ASGI ``receive`` of one request: the body, then ``http.disconnect`` once the client has gone."""
    state = {"body_done": False}
    chunks: Any = None

    async def receive() -> Message:
        nonlocal chunks
        if state["body_done"]:
            await proto.client_disconnect()
            return _DISCONNECT
        try:
            if one_shot:
                state["body_done"] = True
                return {"type": "http.request", "body": await proto(), "more_body": False}
            if chunks is None:
                chunks = proto.__aiter__()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                state["body_done"] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}
        except errors:
            state["body_done"] = True
            return _DISCONNECT

    return receive


# serving ------------------------------------------------------------------------------------------


def app_from_env() -> RsgiApp:
    """The RSGI app for a granian worker process (``workers > 1``), from ``LLM_PROXY_CONFIG``."""
    from llm_proxy.app.serve import app_from_env as asgi_from_env

    app = asgi_from_env()
    return RsgiApp(app)  # type: ignore[arg-type]


def _quiet_granian() -> dict[str, Any]:
    """granian's loggers hand their records to ours (same format, same redaction); its notice that the
    embedded server is experimental is dropped (the benchmarks and ``tests/test_rsgi.py`` cover it)."""
    logging.getLogger("_granian").addFilter(lambda r: "experimental" not in r.getMessage())
    return {
        "loggers": {
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        }
    }


def run(
    app: object,
    *,
    host: str,
    port: int,
    grace: float,
    log_level: str = "info",
    workers: int = 1,
    config_path: str = "",
) -> None:
    """Serve ``app`` on granian RSGI until SIGINT/SIGTERM (see ``serve.run``, which calls this)."""
    try:
        from granian.constants import HTTPModes, Interfaces, Loops
        from granian.log import LogLevels
    except ImportError:
        raise ListenError("server.interface rsgi needs granian: pip install 'llm-proxy[granian]'") from None

    from llm_proxy.app.serve import CONFIG_ENV, _metrics_directory, listen_socket, settle_heap

    listen_socket(host, port).close()  # a port in use is one clear message, before anything starts
    log.info("listening on http://%s:%d (granian RSGI)", f"[{host}]" if ":" in host else host, port)
    level = LogLevels(log_level if log_level in LogLevels.__members__ else "info")
    common: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.RSGI,
        "websockets": False,
        "backlog": 4096,
        "backpressure": 4096,
        "log_level": level,
        "log_dictconfig": _quiet_granian(),
        "log_access": False,
        "http": HTTPModes.http1,
    }
    if workers > 1:
        import multiprocessing

        from granian import Granian

        # granian starts its workers with multiprocessing's default method, fork on Linux: a forked worker would
        # inherit this process's already-imported metrics (no multiprocess mode) and its app; spawned ones
        # start afresh and build the app from the config file, as uvicorn's workers do
        multiprocessing.set_start_method("spawn", force=True)
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
        with _metrics_directory():
            Granian(
                "llm_proxy.app.rsgi:app_from_env", factory=True, workers=workers, loop=Loops.uvloop,
                workers_kill_timeout=max(1, round(grace)), **common,
            ).serve()  # fmt: skip
        return
    import uvloop

    settle_heap()
    uvloop.run(_serve_embedded(RsgiApp(cast(AsgiApp, app)), common, grace))


async def _serve_embedded(app: RsgiApp, options: dict[str, Any], grace: float) -> None:
    from granian.server.embed import Server

    server = Server(app, **options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.signal_handler_interrupt)
    await app.startup()
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.wait_for(app.shutdown(), timeout=max(1.0, grace))
