"""Translation mode: decode the client's dialect, encode the backend's, and the reverse for the answer.

Pipeline: bytes -> client codec -> canonical request -> (edits) -> backend codec -> upstream, then
upstream bytes -> backend codec -> canonical response or events -> client codec -> bytes. Streams are
translated chunk by chunk with sans-IO codecs: nothing is buffered beyond one incomplete event.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from llm_proxy.canonical import ErrorKind, ProxyError, Request, StreamError, StreamEvent
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import Dialect, EncodeOptions, StreamEncoder
from llm_proxy.editing import Progress, RequestEditor, ThinkingCollector
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.exchange import Exchange
from llm_proxy.headers import translated_request_headers
from llm_proxy.routing import Operation, Target
from llm_proxy.upstream import StreamInterrupted, Upstream, UpstreamResponse

MAX_ERROR_BODY = 1 << 20
MAX_RESPONSE_BODY = 256 << 20


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` without doubling ``/v1`` (``https://api.openai.com/v1`` + ``/v1/chat/...``)."""
    if path.startswith("/v1/") and base.endswith("/v1"):
        return base + path[3:]
    return base + path


async def handle(
    ex: Exchange, route: Route, target: Target, doc: Any, upstream: Upstream, editor: RequestEditor
) -> None:
    client = get_dialect(route.frontend_dialect or "")
    backend = get_dialect(route.backend_dialect or "")
    if not isinstance(doc, dict):
        raise RequestError("the request body must be a JSON object")
    request = client.decode_request(doc, path_model=target.path_model)
    if target.operation is Operation.BEDROCK_STREAM and not request.stream:
        request = dataclasses.replace(request, stream=True)
    progress: Progress | None = None
    edited = request
    if editor.active(route):
        edited, progress = await editor.edit(route, ex.headers, request)
    memory = editor.thinking if _needs_thinking_memory(route, request) else None
    if memory is not None:
        edited = await memory.restore(edited)
    upstream_request = dataclasses.replace(edited, model=route.backend_model_name)
    options = EncodeOptions(default_max_tokens=route.default_max_tokens)
    payload = orjson.dumps(backend.encode_request(upstream_request, options))
    url = join_url(route.backend_base_url, backend.upstream_path(upstream_request))
    headers = translated_request_headers(ex.headers, route, backend.upstream_headers(upstream_request, ex.headers))
    response = await upstream.send("POST", url, headers, payload)
    try:
        if response.status >= 400:
            body = await response.read(MAX_ERROR_BODY)
            raise UpstreamError(backend.decode_error(response.status, body, _header_map(response)))
        if request.stream:
            collector = ThinkingCollector() if memory is not None else None
            await _stream(ex, response, backend, client, request, upstream_request, progress, collector)
            if memory is not None and collector is not None:
                await memory.remember(collector.parts)
        else:
            body = await response.read(MAX_RESPONSE_BODY)
            decoded = backend.decode_response(parse_upstream(body), upstream_request)
            extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in client.response_headers(decoded).items()]
            await ex.respond(200, "application/json", client.encode_response(decoded, request), extra)
            if progress is not None:
                progress.feed_response(decoded)
            if memory is not None:
                await memory.remember(decoded.content)
        if progress is not None:
            await progress.finish()
    finally:
        response.close()


async def _stream(
    ex: Exchange,
    response: UpstreamResponse,
    backend: Dialect,
    client: Dialect,
    request: Request,
    upstream_request: Request,
    progress: Progress | None,
    collector: ThinkingCollector | None,
) -> None:
    decoder = backend.stream_decoder(upstream_request)
    encoder = client.stream_encoder(request)
    headers = [(b"content-type", encoder.content_type.encode()), (b"cache-control", b"no-cache")]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in client.response_headers(None).items()]
    await ex.start(200, headers)
    try:
        async for chunk in response.chunks():
            events = decoder.feed(chunk)
            if events:
                if progress is not None:
                    progress.feed(events)
                if collector is not None:
                    collector.feed(events)
                out = _encode(encoder, events)
                if out:
                    await ex.body(out)
        tail = decoder.close()
    except StreamInterrupted as exc:
        kind = ErrorKind.TIMEOUT if exc.timeout else ErrorKind.API_ERROR
        tail = [StreamError(error=ProxyError(status=504 if exc.timeout else 502, kind=kind, message=str(exc)))]
        ex.note = str(exc)
    if progress is not None:
        progress.feed(tail)
    await ex.end(_encode(encoder, tail) + encoder.close())


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
