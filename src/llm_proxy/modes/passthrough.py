"""Proxy mode, the async shell: the request goes to the same API on another host, changed only in model
and credentials.

The body is forwarded byte for byte except the top-level ``model`` (or the model id in the path), as
planned by ``plan.plan_passthrough`` (pure); prompt edits and progress go through ``Sessions.open_raw``.
The response (status, headers, body) comes back chunk by chunk as the upstream sends it, with
no buffering: each chunk is written to the client before the next one is read, so a slow client slows
the upstream read instead of growing memory.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence

from llm_proxy.app.exchange import Exchange, RequestBody
from llm_proxy.canonical import ProxyError, Request, Response, StreamEvent
from llm_proxy.config import Backend, Route
from llm_proxy.errors import StreamInterrupted, UpstreamError, UpstreamUnavailable, kind_for_status
from llm_proxy.modes.attempts import MAX_WAIT, NEXT_KEY_STATUSES, RETRYABLE_STATUSES, retry_after, wait_before
from llm_proxy.modes.plan import plan_passthrough
from llm_proxy.modes.translate import Services
from llm_proxy.observe.redact import Redactor
from llm_proxy.routing import Target
from llm_proxy.session.turn import Sessions, Tap, Turn
from llm_proxy.upstream.client import UpstreamResponse
from llm_proxy.upstream.headers import RawHeaders, response_headers

MAX_ERROR_BODY = 1 << 20
_UNREAD = Request(model="", messages=())
"""The request a JSON answer's summary is read with (it reads none of it)."""

log = logging.getLogger("llm_proxy.modes.passthrough")


async def handle(ex: Exchange, route: Route, target: Target, request: RequestBody, services: Services) -> None:
    """Send the request (``request.data``, parsed as ``request.doc``) to the route's upstream and relay the answer;
    ``request`` is released once an answer is relayed (no local here keeps the body beyond that)."""
    dialect = target.dialect
    sessions, redactor, health = services.sessions, services.redactor, services.health
    turn: Turn | None = None
    edited = False
    edits = route.inject_progress or route.system_replacements or route.system_append
    if edits and dialect is not None and isinstance(request.doc, dict):
        edited, turn = await sessions.open_raw(route, dialect, ex.headers, request.doc, target.path_model)
    if not route.backends and not route.fallbacks and not route.retries:
        # One backend, one attempt: nothing to choose, retry or record (the common case, kept short).
        call = plan_passthrough(route, target, ex.method, ex.raw_headers, ex.query, request.data, request.doc, edited)
        call = ex.record.attempt(route.backend_name, call)
        try:
            response = await services.upstream.send(call)
        except UpstreamUnavailable as exc:
            ex.record.failed(str(exc.error.kind))
            raise
        del call  # the upstream's copy of the body: not needed while the answer is relayed
        request.release()
        ex.record.headers_in(response.status)
        tag = SINGLE_TAG if route.backend_name == "0" else _tag(route.backend_name, 1)
        try:
            await _relay(ex, response, turn, dialect, sessions, redactor, tag, route.backend_model_name)
        finally:
            response.close()
        return
    attempts = health.attempts(route)
    pooled = len(route.backends) > 1
    previous: Backend | None = None
    wait: float | None = None
    for n, backend in enumerate(attempts):
        if n and not await wait_before(n, backend, previous, wait, health):
            break
        previous, last = backend, n == len(attempts) - 1
        call = plan_passthrough(
            route.using(backend), target, ex.method, ex.raw_headers, ex.query, request.data, request.doc, edited
        )
        call = ex.record.attempt(backend.name, call)
        try:
            response = await services.upstream.send(call)
        except UpstreamUnavailable as exc:
            ex.record.failed(str(exc.error.kind))
            health.failed(route, backend)
            if last:
                raise
            log.warning("backend %s of %s unreachable (%s), attempt %d", backend.name, route.label, exc, n + 1)
            continue
        status = response.status
        ex.record.headers_in(status)
        retry = status >= 400 and (status in RETRYABLE_STATUSES or (status in NEXT_KEY_STATUSES and pooled))
        if not last and retry:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.raw_headers}
            wait = retry_after(headers)
            if attempts[n + 1] is backend and (wait or 0.0) > MAX_WAIT:
                last = True  # the same backend asks for a longer wait than a retry may take: relay its answer
        if not last and retry:
            response.close()
            ex.record.failed(str(kind_for_status(status)))
            health.failed(route, backend, wait)
            log.warning("backend %s of %s answered %d, attempt %d", backend.name, route.label, status, n + 1)
            continue
        if status < 500 and (pooled or route.fallbacks):
            health.succeeded(route, backend)
        tag = _tag(backend.name, n + 1)
        model = call.route.backend_model_name
        del call  # this answer is relayed: no later attempt reads the request
        request.release()
        try:
            await _relay(ex, response, turn, dialect, sessions, redactor, tag, model)
        finally:
            response.close()
        return
    raise UpstreamUnavailable(f"no backend of {route.label} could be reached", timeout=False)


def _tag(backend: str, attempts: int) -> RawHeaders:
    return [(b"x-llm-proxy-backend", backend.encode()), (b"x-llm-proxy-attempts", str(attempts).encode())]


SINGLE_TAG = _tag("0", 1)


async def _relay(
    ex: Exchange,
    response: UpstreamResponse,
    turn: Turn | None,
    dialect: str | None,
    sessions: Sessions,
    redactor: Redactor,
    tag: RawHeaders,
    model: str,
) -> None:
    if response.status >= 400 and redactor.active:
        await _relay_error(ex, response, redactor, tag)
        return
    tap = _tap(ex, response, turn, dialect, model)
    observers = [ex.record.observe] + ([turn.observe] if turn is not None and turn.watching else [])
    headers = response_headers(response.raw_headers)
    # One search over all the values rather than one per header: a secret in any value is found in the joined ones
    # (``headers`` then masks value by value).
    if redactor.active and redactor.found_in(b"\n".join([value for _, value in headers])):
        headers = redactor.headers(headers)
    headers.extend(tag)
    await ex.start_relayed(response.status, headers)
    await _pass_body(ex, response, tap, observers)
    if tap is not None:
        events, answer = tap.close()
        for observe in observers:
            if events:
                observe(events)
        if answer is not None:
            ex.record.answered(answer)
            if turn is not None and isinstance(answer, Response):
                turn.answered(answer)
    if turn is not None:
        await sessions.close(turn)


async def _pass_body(
    ex: Exchange, response: UpstreamResponse, tap: Tap | None, observers: Sequence[Callable[[list[StreamEvent]], None]]
) -> None:
    """The upstream body to the client, chunk by chunk, each shown to the tap; then the body's end."""
    # A body of announced length is an answer already made, not a stream: each chunk waits for the next one and the
    # last goes out with the end (one ASGI send per body instead of two). Any other body passes on as it comes.
    sized = response.header("content-length") is not None
    held = b""
    try:
        async for chunk in response.chunks():
            if not sized:
                await ex.body(chunk)
            elif held:
                await ex.body(held)
            held = chunk
            if tap is not None:
                events = tap.feed(chunk)
                if events:
                    for observe in observers:
                        observe(events)
    except StreamInterrupted:
        if sized and held:
            await ex.body(held)  # what the upstream did send reaches the client before the connection is cut
        raise
    await ex.end(held if sized else b"")


def _tap(ex: Exchange, response: UpstreamResponse, turn: Turn | None, dialect: str | None, model: str) -> Tap | None:
    """How the answer is read as it passes (the path dialect's decoder): for the record's usage and first token,
    and the turn's progress. None when it cannot be read (an error, an unknown path, a compressed body)."""
    if dialect is None or response.status != 200:
        return None
    content_type = response.header("content-type") or ""
    if "event-stream" in content_type or "eventstream" in content_type:
        ex.record.stream_opened(ex.prefix)
    if response.header("content-encoding") not in (None, "identity"):
        return None
    if turn is None or not turn.watching:  # only what the record reads: usage, model, stop reason, first token
        light = Request(model=model, messages=()) if "json" not in content_type else _UNREAD  # a summary needs none
        return Tap(dialect, light, content_type, light=True)
    return Tap(dialect, turn.request, content_type)


async def _relay_error(ex: Exchange, response: UpstreamResponse, redactor: Redactor, tag: RawHeaders) -> None:
    """An upstream error answer, relayed with every configured secret masked (some upstreams echo the key).

    The body is read whole (error bodies are small) so it can be checked; a compressed body is checked
    decompressed and, if it held a secret, sent decompressed. A body in an encoding the proxy cannot read
    is withheld rather than relayed unchecked.
    """
    body = await response.read(MAX_ERROR_BODY)
    headers = redactor.headers(response_headers(response.raw_headers))
    encoding = (response.header("content-encoding") or "identity").strip().lower()
    plain = body if encoding == "identity" else _decompress(body, encoding)
    if plain is None:
        raise UpstreamError(
            ProxyError(
                status=response.status,
                kind=kind_for_status(response.status),
                message=f"the upstream answered HTTP {response.status} (its {encoding}-encoded body is withheld)",
            )
        )
    if redactor.found_in(plain):
        body = redactor.data(plain)
        dropped = {b"content-length", b"content-encoding"}
        headers = [(k, v) for k, v in headers if k.lower() not in dropped]
    else:
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await ex.start_relayed(response.status, headers + tag)
    await ex.end(body)


def _decompress(body: bytes, encoding: str) -> bytes | None:
    """``body`` decoded from a gzip or deflate ``Content-Encoding``, or None for any other or a broken one."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        return None
    try:
        decoder = zlib.decompressobj(wbits)
        plain = decoder.decompress(body, MAX_ERROR_BODY)
    except zlib.error:
        return None
    return None if decoder.unconsumed_tail else plain
