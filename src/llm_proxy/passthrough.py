"""Proxy mode: the request goes to the same API on another host, changed only in model and credentials.

The body is forwarded byte for byte except the top-level ``model`` (or the model id in a Bedrock
path); the response (status, headers, body) comes back chunk by chunk as the upstream sends it, with
no buffering: each chunk is written to the client before the next one is read, so a slow client slows
the upstream read instead of growing memory.
"""

from __future__ import annotations

from typing import Any

from llm_proxy.config import Route
from llm_proxy.exchange import Exchange
from llm_proxy.headers import proxy_request_headers, response_headers
from llm_proxy.jsonbody import replace_model
from llm_proxy.routing import Operation, Target, bedrock_path
from llm_proxy.upstream import Upstream


async def handle(ex: Exchange, route: Route, target: Target, body: bytes, doc: Any, upstream: Upstream) -> None:
    rest = target.rest
    if target.operation in (Operation.BEDROCK_INVOKE, Operation.BEDROCK_STREAM):
        rest = bedrock_path(route.backend_model_name, target.streaming_path)
    elif isinstance(doc, dict):
        model = doc.get("model")
        if isinstance(model, str) and model != route.backend_model_name:
            body = replace_model(body, model, route.backend_model_name)
    url = route.backend_base_url + rest
    if ex.query:
        url += "?" + ex.query.decode("latin-1")
    response = await upstream.send(ex.method, url, proxy_request_headers(ex.raw_headers, route), body)
    try:
        await ex.start(response.status, response_headers(response.raw_headers))
        async for chunk in response.chunks():
            await ex.body(chunk)
        await ex.end()
    finally:
        response.close()
