"""Translation mode, the async shell: decode, session reads, plan, send, translate back, session writes.

Pipeline: bytes -> client codec -> canonical request -> ``Sessions.open`` (stored conversation, progress
section, restored thinking, prompt edits) -> ``plan_translation`` (pure) -> ``Upstream.send`` -> the
answer through ``StreamTranslator`` / ``translate_response`` (pure) -> ``Sessions.close``. Attempts go to
the route's backends in the order ``attempts.Health`` gives, until one answers or the retries are spent; an
attempt is committed (its answer reaches the client) only once its status and first events are known.
Every decision is made in ``plan``, ``attempts``, ``translator`` and ``session``; this module awaits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from llm_proxy.app.exchange import Exchange, RequestBody
from llm_proxy.canonical import ErrorKind, ProxyError, Request, Response, StreamError, StreamEvent
from llm_proxy.config import Backend, Route
from llm_proxy.dialects import get_dialect, get_spec
from llm_proxy.dialects.base import Dialect
from llm_proxy.errors import (
    ProxyFailure,
    RequestError,
    StreamInterrupted,
    UpstreamError,
    UpstreamUnavailable,
)
from llm_proxy.modes.attempts import (
    NEXT_KEY_STATUSES,
    RETRYABLE_KINDS,
    Health,
    retry_after,
    retryable_status,
    wait_before,
)
from llm_proxy.modes.plan import plan_count_tokens, plan_translation
from llm_proxy.modes.translator import StreamTranslator, translate_response
from llm_proxy.observe.redact import Redactor
from llm_proxy.prompt import edit_request
from llm_proxy.routing import Target
from llm_proxy.session.turn import Sessions, Turn
from llm_proxy.tokens import estimate_input_tokens
from llm_proxy.upstream.client import Upstream, UpstreamResponse

MAX_ERROR_BODY = 1 << 20
MAX_RESPONSE_BODY = 256 << 20

log = logging.getLogger("llm_proxy.modes.translate")


@dataclass(frozen=True, slots=True)
class Services:
    """What translation mode uses besides the request."""

    upstream: Upstream
    sessions: Sessions
    redactor: Redactor
    health: Health


async def handle(ex: Exchange, route: Route, target: Target, body: RequestBody, services: Services) -> None:
    """Decode the request (``body.doc``) into the canonical one, which every attempt is made from; ``body`` is
    released once decoded."""
    client = get_dialect(route.frontend_dialect or "")
    if not isinstance(body.doc, dict):
        raise RequestError("the request body must be a JSON object")
    request = client.decode_request(body.doc, path_model=target.path_model, query=_query(ex.query))
    body.release()
    endpoint = target.endpoint
    if endpoint is not None and endpoint.action == "count_tokens":
        await _count_tokens(ex, route, request, get_dialect(route.backend_dialect or ""), services)
        return
    if endpoint is not None and endpoint.streaming and not request.stream:
        request = dataclasses.replace(request, stream=True)
    turn = await services.sessions.open(route, ex.headers, request)
    health = services.health
    failure: Retryable | None = None
    previous: Backend | None = None
    for n, backend in enumerate(health.attempts(route)):
        if failure is not None and not await wait_before(n, backend, previous, failure.wait, health):
            break
        previous = backend
        attempt = route.using(backend)
        try:
            opened = await _open(ex, attempt, target, request, turn, client, services)
        except Retryable as exc:
            ex.record.failed(str(exc.error.kind))
            if exc.error.status in NEXT_KEY_STATUSES and len(route.pool) < 2:
                raise UpstreamError(exc.error) from None
            health.failed(route, backend, exc.wait)
            log.warning("backend %s of %s failed (%s), attempt %d", backend.name, route.label, exc.error.message, n + 1)
            failure = exc
            continue
        health.succeeded(route, backend)
        tag = [("x-llm-proxy-backend", backend.name), ("x-llm-proxy-attempts", str(n + 1))]
        try:
            await _answer(ex, opened, tag)
            await services.sessions.close(turn)
        finally:
            opened.response.close()
        return
    assert failure is not None
    raise failure.final()


class Retryable(Exception):
    """An attempt failed before anything reached the client, in a way another attempt may fix."""

    def __init__(self, error: ProxyError, wait: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.wait = wait

    def final(self) -> ProxyFailure:
        return ProxyFailure(self.error)


@dataclass(slots=True)
class _Opened:
    response: UpstreamResponse
    backend: Dialect
    client: Dialect
    request: Request
    upstream_request: Request
    message_id: str | None
    translator: StreamTranslator | None = None
    first: list[StreamEvent] = field(default_factory=list)
    """Stream events decoded before committing to this attempt."""
    body: bytes = b""
    observe: Callable[[Response], None] | None = None


async def _open(
    ex: Exchange,
    route: Route,
    target: Target,
    request: Request,
    turn: Turn,
    client: Dialect,
    services: Services,
) -> _Opened:
    """One attempt up to the point of no return: the upstream's status, and its first events or whole body."""
    backend = get_dialect(route.backend_dialect or "")
    upstream_request, call = plan_translation(route, target, ex.headers, turn.request)
    call = ex.record.attempt(route.backend_name, call)
    try:
        response = await services.upstream.send(call)
    except UpstreamUnavailable as exc:
        raise Retryable(exc.error) from None
    ex.record.headers_in(response.status)
    opened = _Opened(response, backend, client, request, upstream_request, turn.response_id)
    try:
        if response.status >= 400:
            body = await response.read(MAX_ERROR_BODY)
            headers = _header_map(response)
            error = backend.decode_error(response.status, body, headers)
            if retryable_status(response.status) or response.status in NEXT_KEY_STATUSES:
                raise Retryable(error, retry_after(headers))
            raise UpstreamError(error)
        if request.stream:
            observers = (ex.record.observe, turn.observe) if turn.watching else (ex.record.observe,)
            opened.translator = StreamTranslator(
                backend,
                client,
                request,
                upstream_request,
                message_id=turn.response_id,
                redactor=services.redactor,
                observers=observers,
            )
            await _first_events(opened)
        else:
            opened.body = await response.read(MAX_RESPONSE_BODY)
            opened.observe = turn.answered
    except StreamInterrupted as exc:
        response.close()
        kind = ErrorKind.TIMEOUT if exc.timeout else ErrorKind.UPSTREAM_UNREACHABLE
        raise Retryable(ProxyError(status=504 if exc.timeout else 502, kind=kind, message=str(exc))) from None
    except BaseException:
        response.close()
        raise
    return opened


async def _first_events(opened: _Opened) -> None:
    """Read until the stream's first events: an error there (Anthropic's overloaded_error) is still retryable."""
    translator = opened.translator
    assert translator is not None
    async for chunk in opened.response.chunks():
        events = translator.decode(chunk)
        if events:
            opened.first = events
            first = events[0]
            if isinstance(first, StreamError) and first.error.kind in RETRYABLE_KINDS:
                opened.response.close()
                raise Retryable(first.error)
            return


async def _answer(ex: Exchange, opened: _Opened, tag: list[tuple[str, str]]) -> None:
    """The committed attempt's answer, to the client: from here on, failures are the dialect's in-stream errors."""
    translator = opened.translator
    if translator is None:
        answer = translate_response(
            opened.backend,
            opened.client,
            parse_upstream(opened.body),
            opened.request,
            opened.upstream_request,
            message_id=opened.message_id,
        )
        await ex.respond(200, "application/json", answer.body, _raw(answer.headers[1:] + tag))
        ex.record.answered(answer.response)
        if opened.observe is not None:
            opened.observe(answer.response)
        return
    ex.record.stream_opened(ex.prefix)
    await ex.start(200, _raw(translator.headers + tag))
    try:
        if opened.first:
            await ex.body(translator.encode(opened.first))
        async for chunk in opened.response.chunks():
            out = translator.feed(chunk)
            if out:
                await ex.body(out)
        tail = translator.close()
    except StreamInterrupted as exc:
        ex.note = str(exc)
        tail = translator.interrupted(str(exc), timeout=exc.timeout)
    await ex.end(tail)


async def _count_tokens(ex: Exchange, route: Route, request: Request, backend: Dialect, services: Services) -> None:
    """Forwarded to an upstream whose API counts tokens; estimated with a local tokenizer for any other."""
    edit = services.sessions.system_edit(route)
    if edit is not None:
        request = edit_request(request, edit)
    call = plan_count_tokens(route, ex.headers, request)
    client_spec = get_spec(route.frontend_dialect or "")
    if call is None:
        # A large body takes a while to tokenize: off the event loop (tiktoken releases the GIL).
        tokens = await asyncio.to_thread(estimate_input_tokens, request)
        body = orjson.dumps({client_spec.token_count_field: tokens})
        await ex.respond(200, "application/json", body, [(b"x-llm-proxy-token-count", b"estimate")])
        return
    response = await services.upstream.send(call)
    try:
        body = await response.read(MAX_ERROR_BODY)
        if response.status >= 400:
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        backend_spec = get_spec(route.backend_dialect or "")
        if backend_spec.token_count_field != client_spec.token_count_field:
            # the same count, under the field the client's dialect names it
            doc = parse_upstream(body)
            count = doc.get(backend_spec.token_count_field) if isinstance(doc, dict) else None
            if not isinstance(count, int):
                raise UpstreamError(ProxyError(status=502, kind=ErrorKind.API_ERROR, message="no token count"))
            body = orjson.dumps({client_spec.token_count_field: count})
        await ex.respond(200, "application/json", body)
    finally:
        response.close()


def _query(raw: bytes) -> dict[str, str]:
    """The query parameters (the first value of each), for the client codec."""
    return dict(reversed(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))) if raw else {}


def parse_upstream(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            ProxyError(status=502, kind=ErrorKind.API_ERROR, message=f"the upstream answered with invalid JSON: {exc}")
        ) from None


def _raw(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _header_map(response: UpstreamResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.raw_headers}
