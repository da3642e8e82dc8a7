"""Proxy mode: the request goes to the same API on another host, changed only in model and credentials.

The body is forwarded byte for byte except the top-level ``model`` (or the model id in a Bedrock
path); the response (status, headers, body) comes back chunk by chunk as the upstream sends it, with
no buffering: each chunk is written to the client before the next one is read, so a slow client slows
the upstream read instead of growing memory.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_proxy.canonical import Request
from llm_proxy.config import Route
from llm_proxy.editing import Progress, RequestEditor
from llm_proxy.exchange import Exchange
from llm_proxy.headers import proxy_request_headers, response_headers
from llm_proxy.jsonbody import replace_model
from llm_proxy.routing import OPERATION_DIALECT, Operation, Target, bedrock_path
from llm_proxy.upstream import Upstream


async def handle(
    ex: Exchange, route: Route, target: Target, body: bytes, doc: Any, upstream: Upstream, editor: RequestEditor
) -> None:
    rest = target.rest
    bedrock = target.operation in (Operation.BEDROCK_INVOKE, Operation.BEDROCK_STREAM)
    if bedrock:
        rest = bedrock_path(route.backend_model_name, target.streaming_path)
    model = doc.get("model") if isinstance(doc, dict) and not bedrock else None
    rename = isinstance(model, str) and model != route.backend_model_name
    dialect = OPERATION_DIALECT.get(target.operation)
    progress: Progress | None = None
    request: Request | None = None
    edited = False
    if dialect is not None and isinstance(doc, dict) and editor.active(route):
        edited, progress, request = await editor.edit_raw(route, dialect, ex.headers, doc, target.path_model)
        if edited:
            # Prompt edits re-serialise the body (same keys, order and values, compact spacing).
            if rename:
                doc["model"] = route.backend_model_name
            body = orjson.dumps(doc)
    if rename and not edited:
        body = replace_model(body, str(model), route.backend_model_name)
    url = route.backend_base_url + rest
    if ex.query:
        url += "?" + ex.query.decode("latin-1")
    headers = upstream.signer.prepare(route, target, ex.method, url, proxy_request_headers(ex.raw_headers, route), body)
    response = await upstream.send(ex.method, url, headers, body)
    try:
        if progress is not None and request is not None and dialect is not None and response.status == 200:
            if response.header("content-encoding") in (None, "identity"):
                progress.tap(dialect, request, response.header("content-type") or "")
        await ex.start(response.status, response_headers(response.raw_headers))
        async for chunk in response.chunks():
            await ex.body(chunk)
            if progress is not None:
                progress.tap_bytes(chunk)
        await ex.end()
        if progress is not None:
            await progress.finish()
    finally:
        response.close()
