"""The ASGI application: the one place where client requests arrive and responses leave.

For each request: read the body, find the route (prefix, then model), hand over to proxy mode or
translation mode, and render any failure as an error body in the dialect the client speaks. A
client disconnect cancels the handler, which closes the upstream connection: at once once the request has run
``WATCH_AFTER`` seconds, else when it reaches that age (``app.disconnect``).

The app is plain ASGI so that the server underneath (uvicorn or granian) can be swapped in
``llm_proxy.app.serve`` without touching anything here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from llm_proxy.access.gate import Gate, Signed
from llm_proxy.app.admin import PATHS as ADMIN_PATHS
from llm_proxy.app.admin import Admin, is_admin_path
from llm_proxy.app.disconnect import DisconnectWatch
from llm_proxy.app.exchange import Exchange, Receive, RequestBody, Scope, Send, read_body
from llm_proxy.app.reload import Reloader
from llm_proxy.canonical import ErrorKind, ProxyError
from llm_proxy.config import ClientKey, Config, Route
from llm_proxy.dialects import DEFAULT_DIALECT, detect, get_dialect, get_spec, specs
from llm_proxy.errors import ProxyFailure, RequestError, RouteError, StreamInterrupted
from llm_proxy.jsonbody import parse_body
from llm_proxy.ledger.record import UsageRecord
from llm_proxy.ledger.service import Ledger
from llm_proxy.modes import passthrough, translate
from llm_proxy.modes.attempts import Health
from llm_proxy.observe.held_lines import flush_held_lines
from llm_proxy.observe.logs import REQUEST_ID
from llm_proxy.observe.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from llm_proxy.observe.metrics import Metrics
from llm_proxy.observe.redact import Redactor
from llm_proxy.observe.tracing import Tracing
from llm_proxy.routing import Router, Target
from llm_proxy.session.store import open_store
from llm_proxy.session.turn import Sessions
from llm_proxy.upstream.client import Upstream
from llm_proxy.upstream.mock import MockUpstream

if TYPE_CHECKING:
    from llm_proxy.access.quota import Quota

log = logging.getLogger("llm_proxy.app.server")
_BAD_REQUEST_KINDS = frozenset({ErrorKind.INVALID_REQUEST, ErrorKind.REQUEST_TOO_LARGE})
"""Errors the proxy answers itself, before any upstream call, because the request is malformed."""
_REJECTIONS = {ErrorKind.PERMISSION: "forbidden", ErrorKind.RATE_LIMIT: "rate_limit", ErrorKind.BUDGET: "budget"}
"""The rejection reason (metric label) of an access failure's kind; anything else is ``auth``."""
LEDGER_START_WAIT = 10.0
"""Seconds the start waits for the ledger's store when budgets are counted in memory (seeded from it)."""


class ProxyApp:
    """The proxy as an ASGI 3 application."""

    def __init__(self, config: Config, *, mock: MockUpstream | None = None, redactor: Redactor | None = None) -> None:
        self.config = config
        self.router = Router(config.routes)
        self.redactor = redactor or Redactor(config.secrets)
        """Configured secrets, masked in every error body, relayed header and log line (see ``redact``)."""
        # The embedded mock is one more transport of the upstream client, for mock:// routes.
        self.upstream = Upstream(config.server, mock=mock or MockUpstream())
        store = open_store(config.server.state_store)
        self.sessions = Sessions(store, config.server.state_ttl)
        self.ledger = Ledger(config)
        """The usage ledger: records written off the request path, prices, client key budgets (``ledger``)."""
        self.admin = Admin(config.server.admin_key, self.ledger)
        self.metrics = Metrics(
            lambda: store.failures,
            lambda: self.reloader.reloads if self.reloader is not None else {},
            self._ledger_counts,
        )
        self.tracing = Tracing.from_env()
        """OpenTelemetry spans, when the ``OTEL_*`` environment asks for them (``observe.tracing``)."""
        self.health = Health()
        """Per-process backend health: failures, cooldowns, trial requests (``modes.attempts``)."""
        self.services = translate.Services(self.upstream, self.sessions, self.redactor, self.health)
        self._max_body = config.server.max_body_size
        self.ready = False
        """True between lifespan startup and shutdown: what ``/readyz`` reports."""
        self.reloader = Reloader(self, config.path, watch=config.server.watch_config) if config.path else None
        self.quota: Quota | None = None
        self.gate = Gate(config.client_keys, self._quota(config))
        """Client keys: who may use which route and model, within which limits (``access``)."""

    def _ledger_counts(self) -> tuple[int, int]:
        writer = self.ledger.writer
        return (0, 0) if writer is None else (writer.written, writer.dropped)

    def _quota(self, config: Config) -> Quota | None:
        """The limits' counters, made when client keys first appear (the limits library is not loaded before)."""
        if config.client_keys and self.quota is None:
            from llm_proxy.access.quota import Quota

            self.quota = Quota(config.server.state_store)
        return self.quota

    def apply(self, config: Config) -> None:
        """Serve ``config``'s routes from now on; requests in flight finish on theirs (they hold their own
        route and services). Server settings keep their running values (see ``app.reload``)."""
        self.redactor.add(config.secrets)
        self.config = dataclasses.replace(config, server=self.config.server)
        self.router = Router(config.routes)
        self.gate = Gate(config.client_keys, self._quota(config))  # counters carry over: same names, same windows
        self.ledger.apply(config)
        self.health = Health()
        self.services = translate.Services(self.upstream, self.sessions, self.redactor, self.health)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.upstream.open()  # the upstream client exists before the first probe says ready
                if self.reloader is not None:
                    await self.reloader.start()
                if self.ledger.seeds_budgets:  # budgets counted in memory start from the ledger's spend
                    await self.ledger.start()
                    if not await self.ledger.wait_ready(LEDGER_START_WAIT):
                        log.warning("usage ledger not open after %.0f s: budgets start from zero", LEDGER_START_WAIT)
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
                await self.ledger.start()  # the ledger prepares its store in a child, after the server is up
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                if self.reloader is not None:
                    await self.reloader.stop()
                await self.upstream.close()
                if self.quota is not None:
                    await self.quota.close()
                await self.sessions.shutdown()
                await self.ledger.close(max(self.config.server.shutdown_grace_period, 1.0))
                if self.tracing is not None:
                    self.tracing.shutdown()
                flush_held_lines()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = Exchange(scope, send)
        path = scope["path"]
        if path == "/healthz":
            await ex.respond(200, "text/plain; charset=utf-8", b"OK")
            return
        if path == "/readyz":
            status, text = (200, b"OK") if self.ready else (503, b"not ready")
            await ex.respond(status, "text/plain; charset=utf-8", text)
            return
        if path == "/metrics" and ex.method == "GET":
            await ex.respond(200, METRICS_CONTENT_TYPE, self.metrics.render())
            return
        if path.startswith(ADMIN_PATHS) and is_admin_path(path):
            await self.admin.handle(ex)
            return
        REQUEST_ID.set(ex.record.request_id)  # this task's log lines carry it (``observe.logs``)
        ex.record.metrics = self.metrics
        if self.tracing is not None:
            ex.record.span = self.tracing.start(ex.method, path, ex.headers)
        target = self.router.match(ex.path)
        dialect = _path_dialect(target, ex)
        ex.record.dialect = dialect
        if ex.query:
            _lift_query_key(ex, target)
        try:
            body = await read_body(receive, self._max_body)
        except RequestError as failure:
            await self._fail(ex, failure.error, dialect)
            self._done(ex, False, dialect)
            return
        if body is None:
            self._done(ex, True, dialect)
            return
        request = RequestBody(body)
        del body  # from here on ``request`` alone holds it (released while the answer is relayed)
        watch = DisconnectWatch(receive, ex)
        try:
            await self._dispatch(ex, target, request, dialect)
        except asyncio.CancelledError:
            if not watch.disconnected:
                raise
            watch.taken_back()
            ex.note = "client disconnected"
        finally:
            watch.stop()
            self._done(ex, watch.disconnected, dialect)

    def _done(self, ex: Exchange, disconnected: bool, dialect: str | None) -> None:
        """The request ended: its metrics, its span and its access line, from ``ex.record``."""
        code = 499 if disconnected and not ex.finished else ex.status  # 0: no answer began
        status = str(code)
        record, metrics = ex.record, self.metrics
        record.settle(ex.status)
        record.stream_closed()
        backend = record.backend
        for attempt in record.attempts:
            metrics.attempt(attempt.backend, attempt.outcome, attempt.upstream_seconds)
        if record.usage is not None:
            metrics.usage(ex.prefix, ex.model, backend, record.client, record.usage)
        elapsed = time.perf_counter() - record.started
        metrics.request(ex.prefix, ex.model, backend, status, record.client, elapsed, record.ttft)
        if record.span is not None:
            record.span.finish(
                record,
                status=code,
                prefix=ex.prefix,
                model=ex.model,
                backend_model=record.backend_model or ex.backend_model,
                dialect=dialect,
            )
        ex.log(status, code, elapsed)
        ledger = self.ledger
        if ledger.writer is not None or (ex.key is not None and ex.key.budgeted):
            ledger.finish(_usage_record(ex, code, elapsed), ex.key, ex.charged)

    async def _dispatch(self, ex: Exchange, target: Target | None, request: RequestBody, dialect: str) -> None:
        try:
            if target is None:
                raise RouteError(f"no route for path {ex.path!r}; configured prefixes: {self._prefix_list()}")
            ex.prefix = target.prefix
            if target.models_list and ex.method == "GET":
                await self._list_models(ex, target)
                return
            self.router.check_path(target)
            if target.endpoint is None and self._all_translating(target.prefix):
                raise RouteError(f"{ex.method} {ex.path} is not an operation served under {target.prefix or '/'}")
            route, model = self._select(ex, target, request)
            ex.model, ex.backend_model = route.frontend_model_name, route.backend_model_name
            if route.frontend_dialect is not None:
                ex.record.dialect = route.frontend_dialect
            key = await self._admit(ex, route, target, request.data, model) if self.gate.active else None
            if route.translating:
                if target.dialect != route.frontend_dialect:
                    raise RequestError(
                        f"model {route.frontend_model_name!r} under {target.prefix or '/'} speaks "
                        f"{route.frontend_dialect}; this path is not one of its operations"
                    )
                await translate.handle(ex, route, target, request, self.services)
            else:
                await passthrough.handle(ex, route, target, request, self.services)
            if key is not None and key.tokens_per_minute is not None:
                await self.gate.debit(key, ex.record.tokens)
            if key is not None and key.budgeted:
                record = ex.record
                model = record.backend_model or ex.backend_model
                record.cost = await self.ledger.charge(key, record.backend_dialect, model, record.usage)
                ex.charged = True
        except ProxyFailure as failure:
            await self._fail(ex, failure.error, dialect)
        except StreamInterrupted as exc:
            ex.note = str(exc)
            log.warning("upstream stream interrupted: %s", exc)
            if ex.started:
                # Proxy mode, after the response started: nothing valid can be appended, and a clean end
                # would pass a truncated answer as whole. Abort the connection so that the client raises.
                ex.abort()
            else:
                # Before the client got a byte, a cut or stalled upstream body is the upstream failing us.
                kind = ErrorKind.TIMEOUT if exc.timeout else ErrorKind.UPSTREAM_UNREACHABLE
                error = ProxyError(status=504 if exc.timeout else 502, kind=kind, message=str(exc))
                await self._fail(ex, error, dialect)
        except Exception:  # a bug: log it with its traceback, but still answer in the client's dialect
            log.exception("unexpected error handling %s %s", ex.method, ex.path)
            await self._fail(
                ex, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="internal proxy error"), dialect
            )

    async def _admit(self, ex: Exchange, route: Route, target: Target, body: bytes, model: str) -> ClientKey | None:
        """The client key of a request on a guarded route, checked and counted (None on open routes)."""
        if not self.gate.required(route, target):
            return None
        try:
            key = self.gate.identify(route, target, ex.headers, Signed(ex.method, ex.target, body))
            ex.record.client = key.name
            self.gate.allowed(key, route, model)
            await self.gate.admit(key)
            if key.budgeted and self.ledger.budgets is not None:
                await self.ledger.budgets.check(key)
            ex.key = key
        except ProxyFailure as failure:
            kind = failure.error.kind
            reason = _REJECTIONS.get(kind, "auth")
            self.metrics.reject(reason)
            raise
        return key

    def _select(self, ex: Exchange, target: Target, request: RequestBody) -> tuple[Route, str]:
        """The route for the request's model and the model asked; the body parsed into ``request.doc`` (unless it is
        not JSON and need not be)."""
        models = self.router.models(target.prefix)
        body = request.data
        doc: Any = None
        model = target.path_model
        endpoint = target.endpoint
        if endpoint is not None and endpoint.model_in_path:
            if body:
                doc = request.doc = parse_body(body)
        elif body and (endpoint is not None or _is_json(ex)):
            doc = request.doc = parse_body(body)
            if endpoint is not None and not isinstance(doc, dict):
                raise RequestError("the request body must be a JSON object")
            named = doc.get("model") if isinstance(doc, dict) else None
            if named is not None and not isinstance(named, str):
                raise RequestError("`model` must be a string", param="model")
            model = named

        def names() -> str:  # for messages only: not built on the way of a good request
            return ", ".join(self.router.names(target.prefix)) or "(none)"

        if not model:
            if endpoint is None and len(models) == 1 and model is None:
                only = next(iter(models.values()))
                return only, only.frontend_model_name
            raise RequestError(f"the request names no model; models under {target.prefix or '/'}: {names()}")
        route = self.router.lookup(target.prefix, model)
        if route is None:
            raise RouteError(
                f"model {model!r} is not served under {target.prefix or '/'}; available: {names()}",
                code="model_not_found",
            )
        return route, model

    async def _list_models(self, ex: Exchange, target: Target) -> None:
        names = list(self.router.models(target.prefix))
        guarded = [r for r in self.router.routes(target.prefix) if self.gate.required(r, target)]
        if guarded:  # only what the presented key may use
            key = self.gate.identify(guarded[0], target, ex.headers, Signed(ex.method, ex.target, b""))
            ex.record.client = key.name
            if key.prefixes and target.prefix not in key.prefixes:
                names = []
            names = [n for n in names if self.gate.may_use(key, n)]
        body = get_dialect(detect(ex.headers)).encode_model_list(names)
        if body is None:
            body = get_dialect(DEFAULT_DIALECT).encode_model_list(names) or b"{}"
        await ex.respond(200, "application/json", body)

    async def _fail(self, ex: Exchange, error: ProxyError, dialect: str) -> None:
        if self.redactor.active:
            error = dataclasses.replace(error, message=self.redactor.text(error.message))
        ex.note = ex.note or error.message[:200]
        ex.record.error_type = ex.record.error_type or str(error.kind)
        if not ex.record.attempts and error.kind in _BAD_REQUEST_KINDS:
            self.metrics.reject("bad_request")
        if ex.started:
            log.warning("error after the response started (%s): %s", ex.path, error.message)
            ex.abort()  # never a clean end after a failure: the client must see the answer is incomplete
            return
        rendered = get_dialect(dialect).encode_error(error)
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rendered.headers]
        await ex.respond(rendered.status, rendered.content_type, rendered.body, extra)

    def _all_translating(self, prefix: str) -> bool:
        """Translation routes serve only their dialect's operations; other paths are unknown (404)."""
        return all(route.translating for route in self.router.routes(prefix))

    def _prefix_list(self) -> str:
        return ", ".join(p or "/" for p in sorted(self.router.prefixes))


def _usage_record(ex: Exchange, status: int, elapsed: float) -> UsageRecord:
    """The ledger's row for a request that just ended."""
    record = ex.record
    usage = record.usage
    return UsageRecord(
        time=time.time() - elapsed,
        request_id=record.request_id,
        client=record.client,
        prefix=ex.prefix or "/",
        frontend_model=ex.model,
        backend=record.backend,
        backend_model=record.backend_model or ex.backend_model,
        frontend_dialect=record.dialect,
        backend_dialect=record.backend_dialect,
        status=status,
        duration=elapsed,
        ttft=record.ttft,
        input_tokens=0 if usage is None else usage.input_tokens,
        output_tokens=0 if usage is None else usage.output_tokens,
        cache_read_tokens=0 if usage is None else usage.cache_read_tokens,
        cache_write_tokens=0 if usage is None else usage.cache_write_tokens,
        reasoning_tokens=0 if usage is None else usage.reasoning_tokens,
        cost_usd=record.cost,
    )


def _is_json(ex: Exchange) -> bool:
    return "json" in ex.headers.get("content-type", "")


def _lift_query_key(ex: Exchange, target: Target | None) -> None:
    """A key in the query (Gemini's ``?key=``) becomes its dialect's key header, before anything reads or logs it.

    On paths of no dialect (model lists) every dialect that takes keys in the query is asked.
    """
    named = target.dialect if target is not None else None
    for spec in [get_spec(named)] if named is not None else specs():
        if spec.key_query_param is not None and spec.key_header is not None:
            ex.lift_query_key(spec.key_query_param, spec.key_header)


def _path_dialect(target: Target | None, ex: Exchange) -> str:
    """The dialect in which to render errors for this request: the path's, else the one its headers reveal."""
    if target is not None and target.dialect is not None:
        return target.dialect
    return detect(ex.headers)
