"""Translation mode: decode the client's dialect, encode the backend's, and the reverse for the answer.

Pipeline: bytes -> client codec -> canonical request -> (edits) -> backend codec -> upstream, then
upstream bytes -> backend codec -> canonical response or events -> client codec -> bytes. Streams are
translated chunk by chunk with sans-IO codecs: nothing is buffered beyond one incomplete event.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from llm_proxy.assemble import ResponseAssembler
from llm_proxy.canonical import ErrorKind, MessageStart, ProxyError, Request, StreamError, StreamEvent
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import Dialect, EncodeOptions, StreamEncoder
from llm_proxy.editing import Progress, RequestEditor
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.exchange import Exchange
from llm_proxy.headers import translated_request_headers
from llm_proxy.memory import ConversationStore, ThinkingMemory, new_response_id
from llm_proxy.prompt import edit_request
from llm_proxy.redact import Redactor
from llm_proxy.routing import Operation, Target
from llm_proxy.tokens import estimate_input_tokens
from llm_proxy.upstream import StreamInterrupted, Upstream, UpstreamResponse

MAX_ERROR_BODY = 1 << 20
MAX_RESPONSE_BODY = 256 << 20


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` without doubling ``/v1`` (``https://api.openai.com/v1`` + ``/v1/chat/...``)."""
    if path.startswith("/v1/") and base.endswith("/v1"):
        return base + path[3:]
    return base + path


@dataclass(frozen=True, slots=True)
class Services:
    """What translation mode uses besides the request: the upstream client and the state-backed helpers."""

    upstream: Upstream
    editor: RequestEditor
    thinking: ThinkingMemory
    conversations: ConversationStore
    redactor: Redactor


async def handle(ex: Exchange, route: Route, target: Target, doc: Any, services: Services) -> None:
    client = get_dialect(route.frontend_dialect or "")
    backend = get_dialect(route.backend_dialect or "")
    if not isinstance(doc, dict):
        raise RequestError("the request body must be a JSON object")
    request = client.decode_request(doc, path_model=target.path_model)
    if target.operation is Operation.COUNT_TOKENS:
        await _count_tokens(ex, route, request, backend, services)
        return
    if target.operation is Operation.BEDROCK_STREAM and not request.stream:
        request = dataclasses.replace(request, stream=True)
    conversations = services.conversations if _keeps_conversations(route) else None
    minted: str | None = None
    if conversations is not None:
        request = await conversations.expand(request, route.frontend_base_url)
        minted = new_response_id()
    progress: Progress | None = None
    edited = request
    if services.editor.active(route):
        edited, progress = await services.editor.edit(route, ex.headers, request)
    memory = services.thinking if _needs_thinking_memory(route, request) else None
    if memory is not None:
        edited = await memory.restore(edited)
    upstream_request = dataclasses.replace(edited, model=route.backend_model_name)
    options = EncodeOptions(default_max_tokens=route.default_max_tokens)
    payload = orjson.dumps(backend.encode_request(upstream_request, options))
    url = join_url(route.backend_base_url, backend.upstream_path(upstream_request))
    headers = translated_request_headers(ex.headers, route, backend.upstream_headers(upstream_request, ex.headers))
    headers = services.upstream.signer.prepare(route, target, "POST", url, headers, payload)
    response = await services.upstream.send("POST", url, headers, payload)
    try:
        if response.status >= 400:
            body = await response.read(MAX_ERROR_BODY)
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        if request.stream:
            assembler = ResponseAssembler() if memory or conversations else None
            watchers: list[Callable[[list[StreamEvent]], None]] = []
            watchers += [w.feed for w in (progress, assembler) if w is not None]
            pair = _Pair(backend, client, request, upstream_request)
            await _stream(ex, response, pair, watchers, minted, services.redactor)
            answer = assembler.response() if assembler is not None and assembler.complete else None
        else:
            body = await response.read(MAX_RESPONSE_BODY)
            answer = backend.decode_response(parse_upstream(body), upstream_request)
            if minted is not None:
                answer = dataclasses.replace(answer, id=minted)
            extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in client.response_headers(answer).items()]
            await ex.respond(200, "application/json", client.encode_response(answer, request), extra)
            if progress is not None:
                progress.feed_response(answer)
        if progress is not None:
            await progress.finish()
        if answer is not None and memory is not None:
            await memory.remember(answer.content)
        if answer is not None and conversations is not None and minted is not None:
            await conversations.save(route.frontend_base_url, minted, request, answer)
    finally:
        response.close()


@dataclass(frozen=True, slots=True)
class _Pair:
    """The two dialects of a translated exchange, with the request as each side sees it."""

    backend: Dialect
    client: Dialect
    request: Request
    upstream_request: Request


async def _stream(
    ex: Exchange,
    response: UpstreamResponse,
    pair: _Pair,
    watchers: list[Callable[[list[StreamEvent]], None]],
    minted: str | None,
    redactor: Redactor,
) -> None:
    """Translate the upstream stream event by event; ``minted`` replaces the upstream's message id."""
    client = pair.client
    decoder = pair.backend.stream_decoder(pair.upstream_request)
    encoder = client.stream_encoder(pair.request)
    headers = [(b"content-type", encoder.content_type.encode()), (b"cache-control", b"no-cache")]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in client.response_headers(None).items()]
    await ex.start(200, headers)
    try:
        async for chunk in response.chunks():
            events = decoder.feed(chunk)
            if events:
                if minted is not None:
                    events = _with_id(events, minted)
                if redactor.active:
                    events = _redacted(events, redactor)
                for watch in watchers:
                    watch(events)
                out = _encode(encoder, events)
                if out:
                    await ex.body(out)
        tail = decoder.close()
    except StreamInterrupted as exc:
        kind = ErrorKind.TIMEOUT if exc.timeout else ErrorKind.API_ERROR
        tail = [StreamError(error=ProxyError(status=504 if exc.timeout else 502, kind=kind, message=str(exc)))]
        ex.note = str(exc)
    if redactor.active:
        tail = _redacted(tail, redactor)
    for watch in watchers:
        watch(tail)
    await ex.end(_encode(encoder, tail) + encoder.close())


async def _count_tokens(ex: Exchange, route: Route, request: Request, backend: Dialect, services: Services) -> None:
    """Forwarded to a Claude upstream; estimated with a local tokenizer for any other (documented)."""
    edit = services.editor.system_edit(route)
    if edit is not None:
        request = edit_request(request, edit)
    if route.backend_dialect != "claude":
        # A large body takes a while to tokenize: off the event loop (tiktoken releases the GIL).
        body = orjson.dumps({"input_tokens": await asyncio.to_thread(estimate_input_tokens, request)})
        await ex.respond(200, "application/json", body, [(b"x-llm-proxy-token-count", b"estimate")])
        return
    upstream_request = dataclasses.replace(request, model=route.backend_model_name, stream=False)
    payload = backend.encode_request(upstream_request, EncodeOptions(default_max_tokens=route.default_max_tokens))
    payload.pop("max_tokens", None)
    payload.pop("stream", None)
    url = join_url(route.backend_base_url, "/v1/messages/count_tokens")
    headers = translated_request_headers(ex.headers, route, backend.upstream_headers(upstream_request, ex.headers))
    response = await services.upstream.send("POST", url, headers, orjson.dumps(payload))
    try:
        body = await response.read(MAX_ERROR_BODY)
        if response.status >= 400:
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        await ex.respond(200, "application/json", body)
    finally:
        response.close()


def _keeps_conversations(route: Route) -> bool:
    """``previous_response_id`` is served by the proxy when the upstream is not a Responses API."""
    return route.frontend_dialect == "openai-responses" and route.backend_dialect != "openai-responses"


def _redacted(events: list[StreamEvent], redactor: Redactor) -> list[StreamEvent]:
    """In-stream errors carry upstream text, which may echo a configured key."""
    return [
        dataclasses.replace(e, error=dataclasses.replace(e.error, message=redactor.text(e.error.message)))
        if isinstance(e, StreamError)
        else e
        for e in events
    ]


def _with_id(events: list[StreamEvent], message_id: str) -> list[StreamEvent]:
    return [dataclasses.replace(e, id=message_id) if isinstance(e, MessageStart) else e for e in events]


def _encode(encoder: StreamEncoder, events: list[StreamEvent]) -> bytes:
    if len(events) == 1:
        return encoder.encode(events[0])
    return b"".join([encoder.encode(event) for event in events])


def _needs_thinking_memory(route: Route, request: Request) -> bool:
    """Chat clients may drop Claude's signed thinking when they echo a tool-use turn (see ThinkingMemory)."""
    if route.frontend_dialect != "openai-chat" or route.backend_dialect not in ("claude", "bedrock"):
        return False
    reasoning = request.reasoning
    return reasoning is not None and reasoning.effort != "none" and reasoning.mode != "disabled"


def parse_upstream(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            ProxyError(status=502, kind=ErrorKind.API_ERROR, message=f"the upstream answered with invalid JSON: {exc}")
        ) from None


def _header_map(response: UpstreamResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.raw_headers}
