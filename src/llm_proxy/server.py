"""The ASGI application: the one place where client requests arrive and responses leave.

For each request: read the body, find the route (prefix, then model), hand over to proxy mode or
translation mode, and render any failure as an error body in the dialect the client speaks. A
client disconnect cancels the handler at once, which closes the upstream connection.

The app is plain ASGI so that the server underneath (uvicorn or granian) can be swapped in
``llm_proxy.serve`` without touching anything here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import orjson

from llm_proxy import passthrough, translate
from llm_proxy.canonical import ErrorKind, ProxyError
from llm_proxy.config import Config, Route
from llm_proxy.dialects import get_dialect
from llm_proxy.editing import RequestEditor
from llm_proxy.errors import ProxyFailure, RequestError, RouteError
from llm_proxy.exchange import Exchange, Receive, Scope, Send, read_body
from llm_proxy.jsonbody import parse_body
from llm_proxy.memory import ConversationStore, ThinkingMemory
from llm_proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from llm_proxy.metrics import Metrics
from llm_proxy.mock import MockUpstream
from llm_proxy.redact import Redactor
from llm_proxy.routing import OPERATION_DIALECT, Operation, Router, Target, check_rest_path
from llm_proxy.state import open_store
from llm_proxy.upstream import StreamInterrupted, Upstream

log = logging.getLogger("llm_proxy.server")

_ROUTE_DIALECT_OPERATIONS: dict[str, tuple[Operation, ...]] = {
    "openai-chat": (Operation.CHAT,),
    "openai-responses": (Operation.RESPONSES,),
    "claude": (Operation.MESSAGES, Operation.COUNT_TOKENS),
    "bedrock": (Operation.BEDROCK_INVOKE, Operation.BEDROCK_STREAM),
}


class ProxyApp:
    """The proxy as an ASGI 3 application."""

    def __init__(self, config: Config, *, mock: MockUpstream | None = None, redactor: Redactor | None = None) -> None:
        self.config = config
        self.router = Router(config.routes)
        self.redactor = redactor or Redactor(config.secrets)
        """Configured secrets, masked in every error body, relayed header and log line (see ``redact``)."""
        self.upstream = Upstream(config.server, mock)
        store = open_store(config.server.state_store)
        ttl = config.server.state_ttl
        self.editor = RequestEditor(store, ttl)
        self.metrics = Metrics(lambda: float(store.failures))
        self.services = translate.Services(
            self.upstream, self.editor, ThinkingMemory(store, ttl), ConversationStore(store, ttl), self.redactor
        )
        self._max_body = config.server.max_body_size
        self.ready = False
        """True between lifespan startup and shutdown: what ``/readyz`` reports."""

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
                _ = self.upstream.session  # the upstream client exists before the first probe says ready
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.upstream.close()
                await self.editor.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = Exchange(scope, send)
        if scope["path"] == "/healthz":
            await ex.respond(200, "text/plain; charset=utf-8", b"OK")
            return
        if scope["path"] == "/readyz":
            status, text = (200, b"OK") if self.ready else (503, b"not ready")
            await ex.respond(status, "text/plain; charset=utf-8", text)
            return
        if scope["path"] == "/metrics" and ex.method == "GET":
            await ex.respond(200, METRICS_CONTENT_TYPE, self.metrics.render())
            return
        target = self.router.match(ex.path)
        dialect = _path_dialect(target, ex)
        try:
            body = await read_body(receive, self._max_body)
        except RequestError as failure:
            await self._fail(ex, failure.error, dialect)
            self._done(ex, False)
            return
        if body is None:
            self._done(ex, True)
            return
        task = asyncio.current_task()
        disconnected = False

        async def watch_disconnect() -> None:
            nonlocal disconnected
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not ex.finished and task is not None:
                        disconnected = True
                        task.cancel()
                    return

        watcher = asyncio.ensure_future(watch_disconnect())
        try:
            await self._dispatch(ex, target, body, dialect)
        except asyncio.CancelledError:
            if not disconnected or task is None:
                raise
            task.uncancel()
            ex.note = "client disconnected"
        finally:
            watcher.cancel()
            self._done(ex, disconnected)

    def _done(self, ex: Exchange, disconnected: bool) -> None:
        ex.log(disconnected)
        self.metrics.count(ex.prefix, ex.model, "499" if disconnected and not ex.finished else str(ex.status))

    async def _dispatch(self, ex: Exchange, target: Target | None, body: bytes, dialect: str) -> None:
        try:
            if target is None:
                raise RouteError(f"no route for path {ex.path!r}; configured prefixes: {self._prefix_list()}")
            ex.prefix = target.prefix
            if target.operation is Operation.MODELS and ex.method == "GET":
                await self._list_models(ex, target)
                return
            check_rest_path(target.rest, target.operation)
            if target.operation is Operation.OTHER and self._all_translating(target.prefix):
                raise RouteError(f"{ex.method} {ex.path} is not an operation served under {target.prefix or '/'}")
            doc, route = self._select(ex, target, body)
            ex.model, ex.backend_model = route.frontend_model_name, route.backend_model_name
            if route.translating:
                allowed = _ROUTE_DIALECT_OPERATIONS[route.frontend_dialect or ""]
                if target.operation not in allowed:
                    raise RequestError(
                        f"model {route.frontend_model_name!r} under {target.prefix or '/'} speaks "
                        f"{route.frontend_dialect}; this path is not one of its operations"
                    )
                await translate.handle(ex, route, target, doc, self.services)
            else:
                await passthrough.handle(ex, route, target, body, doc, self.upstream, self.editor, self.redactor)
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

    def _select(self, ex: Exchange, target: Target, body: bytes) -> tuple[Any, Route]:
        """The parsed body (None when it is not JSON and need not be) and the route for its model."""
        models = self.router.models(target.prefix)
        doc: Any = None
        model = target.path_model
        if target.operation in (Operation.BEDROCK_INVOKE, Operation.BEDROCK_STREAM):
            if body:
                doc = parse_body(body)
        elif body and (target.operation is not Operation.OTHER or _is_json(ex)):
            doc = parse_body(body)
            if target.operation is not Operation.OTHER and not isinstance(doc, dict):
                raise RequestError("the request body must be a JSON object")
            named = doc.get("model") if isinstance(doc, dict) else None
            if named is not None and not isinstance(named, str):
                raise RequestError("`model` must be a string", param="model")
            model = named
        if not model:
            if target.operation is Operation.OTHER and len(models) == 1 and model is None:
                return doc, next(iter(models.values()))
            raise RequestError(f"the request names no model; models under {target.prefix or '/'}: {_names(models)}")
        route = models.get(model)
        if route is None:
            raise RouteError(
                f"model {model!r} is not served under {target.prefix or '/'}; available: {_names(models)}",
                code="model_not_found",
            )
        return doc, route

    async def _list_models(self, ex: Exchange, target: Target) -> None:
        models = self.router.models(target.prefix)
        if "anthropic-version" in ex.headers:
            data = [
                {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
                for name in models
            ]
            names = list(models)
            doc: dict[str, Any] = {
                "data": data,
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        else:
            doc = {
                "object": "list",
                "data": [{"id": name, "object": "model", "created": 0, "owned_by": "llm-proxy"} for name in models],
            }
        await ex.respond(200, "application/json", orjson.dumps(doc))

    async def _fail(self, ex: Exchange, error: ProxyError, dialect: str) -> None:
        if self.redactor.active:
            error = dataclasses.replace(error, message=self.redactor.text(error.message))
        ex.note = ex.note or error.message[:200]
        if ex.started:
            log.warning("error after the response started (%s): %s", ex.path, error.message)
            ex.abort()  # never a clean end after a failure: the client must see the answer is incomplete
            return
        rendered = get_dialect(dialect).encode_error(error)
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rendered.headers]
        await ex.respond(rendered.status, rendered.content_type, rendered.body, extra)

    def _all_translating(self, prefix: str) -> bool:
        """Translation routes serve only their dialect's operations; other paths are unknown (404)."""
        return all(route.translating for route in self.router.models(prefix).values())

    def _prefix_list(self) -> str:
        return ", ".join(p or "/" for p in sorted(self.router.prefixes))


def _names(models: dict[str, Route]) -> str:
    return ", ".join(sorted(models)) or "(none)"


def _is_json(ex: Exchange) -> bool:
    return "json" in ex.headers.get("content-type", "")


def _path_dialect(target: Target | None, ex: Exchange) -> str:
    """The dialect in which to render errors for this request."""
    if target is not None:
        dialect = OPERATION_DIALECT.get(target.operation)
        if dialect is not None:
            return dialect
    if "anthropic-version" in ex.headers:
        return "claude"
    return "openai-chat"
