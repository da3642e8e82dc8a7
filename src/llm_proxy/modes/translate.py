"""Translation mode, the async shell: decode, session reads, plan, send, translate back, session writes.

Pipeline: bytes -> client codec -> canonical request -> ``Sessions.open`` (stored conversation, progress
section, restored thinking, prompt edits) -> ``plan_translation`` (pure) -> ``Upstream.send`` -> the
answer through ``StreamTranslator`` / ``translate_response`` (pure) -> ``Sessions.close``. This module
only awaits: every decision is made in ``plan``, ``translator`` and ``session``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson

from llm_proxy.app.exchange import Exchange
from llm_proxy.canonical import ErrorKind, ProxyError, Request
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import Dialect
from llm_proxy.errors import RequestError, StreamInterrupted, UpstreamError
from llm_proxy.modes.plan import plan_count_tokens, plan_translation
from llm_proxy.modes.translator import StreamTranslator, translate_response
from llm_proxy.observe.redact import Redactor
from llm_proxy.prompt import edit_request
from llm_proxy.routing import Target
from llm_proxy.session.turn import Sessions
from llm_proxy.tokens import estimate_input_tokens
from llm_proxy.upstream.client import Upstream, UpstreamResponse

MAX_ERROR_BODY = 1 << 20
MAX_RESPONSE_BODY = 256 << 20


@dataclass(frozen=True, slots=True)
class Services:
    """What translation mode uses besides the request."""

    upstream: Upstream
    sessions: Sessions
    redactor: Redactor


async def handle(ex: Exchange, route: Route, target: Target, doc: Any, services: Services) -> None:
    client = get_dialect(route.frontend_dialect or "")
    backend = get_dialect(route.backend_dialect or "")
    if not isinstance(doc, dict):
        raise RequestError("the request body must be a JSON object")
    request = client.decode_request(doc, path_model=target.path_model)
    endpoint = target.endpoint
    if endpoint is not None and endpoint.action == "count_tokens":
        await _count_tokens(ex, route, request, backend, services)
        return
    if endpoint is not None and endpoint.streaming and not request.stream:
        request = dataclasses.replace(request, stream=True)
    turn = await services.sessions.open(route, ex.headers, request)
    upstream_request, call = plan_translation(route, target, ex.headers, turn.request)
    response = await services.upstream.send(call)
    try:
        if response.status >= 400:
            body = await response.read(MAX_ERROR_BODY)
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        if request.stream:
            observers = (turn.observe,) if turn.watching else ()
            translator = StreamTranslator(
                backend,
                client,
                request,
                upstream_request,
                message_id=turn.response_id,
                redactor=services.redactor,
                observers=observers,
            )
            await ex.start(200, _raw(translator.headers))
            try:
                async for chunk in response.chunks():
                    out = translator.feed(chunk)
                    if out:
                        await ex.body(out)
                tail = translator.close()
            except StreamInterrupted as exc:
                ex.note = str(exc)
                tail = translator.interrupted(str(exc), timeout=exc.timeout)
            await ex.end(tail)
        else:
            body = await response.read(MAX_RESPONSE_BODY)
            answer = translate_response(
                backend, client, parse_upstream(body), request, upstream_request, message_id=turn.response_id
            )
            await ex.respond(200, "application/json", answer.body, _raw(answer.headers[1:]))
            turn.answered(answer.response)
        await services.sessions.close(turn)
    finally:
        response.close()


async def _count_tokens(ex: Exchange, route: Route, request: Request, backend: Dialect, services: Services) -> None:
    """Forwarded to an upstream whose API counts tokens; estimated with a local tokenizer for any other."""
    edit = services.sessions.system_edit(route)
    if edit is not None:
        request = edit_request(request, edit)
    call = plan_count_tokens(route, ex.headers, request)
    if call is None:
        # A large body takes a while to tokenize: off the event loop (tiktoken releases the GIL).
        body = orjson.dumps({"input_tokens": await asyncio.to_thread(estimate_input_tokens, request)})
        await ex.respond(200, "application/json", body, [(b"x-llm-proxy-token-count", b"estimate")])
        return
    response = await services.upstream.send(call)
    try:
        body = await response.read(MAX_ERROR_BODY)
        if response.status >= 400:
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        await ex.respond(200, "application/json", body)
    finally:
        response.close()


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
