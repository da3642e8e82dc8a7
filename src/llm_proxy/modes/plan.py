"""Planning the upstream call: a route, a target and a request in, an ``UpstreamCall`` out. Pure.

No socket, no store, no clock: the mode shells do the reads first (``session``), then ask here what to
send, then send it (``upstream.client``), which applies the route's credentials (SigV4 when ``sign``).
This is the seam where several planned calls (retries, fallbacks) will be tried in turn.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from llm_proxy.canonical import Request
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect, get_spec
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.jsonbody import replace_model
from llm_proxy.routing import Target
from llm_proxy.upstream.auth import signs
from llm_proxy.upstream.client import UpstreamCall, check_header_values
from llm_proxy.upstream.headers import RawHeaders, proxy_request_headers, translated_request_headers


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` without doubling ``/v1`` (``https://api.openai.com/v1`` + ``/v1/chat/...``)."""
    if path.startswith("/v1/") and base.endswith("/v1"):
        return base + path[3:]
    return base + path


def plan_translation(
    route: Route, target: Target, client_headers: dict[str, str], request: Request
) -> tuple[Request, UpstreamCall]:
    """The upstream request (``request`` under the backend's model) and the call that sends it."""
    backend = get_dialect(route.backend_dialect or "")
    upstream_request = dataclasses.replace(request, model=route.backend_model_name)
    options = EncodeOptions(default_max_tokens=route.default_max_tokens)
    body = orjson.dumps(backend.encode_request(upstream_request, options))
    url = join_url(route.backend_base_url, backend.upstream_path(upstream_request))
    vendor = backend.upstream_headers(upstream_request, client_headers)
    headers = translated_request_headers(client_headers, route, vendor)
    check_header_values(headers)
    return upstream_request, UpstreamCall("POST", url, headers, body, route, signs(route, target))


def plan_count_tokens(route: Route, client_headers: dict[str, str], request: Request) -> UpstreamCall | None:
    """The upstream's own token count call, or None when its API has none (the proxy then estimates)."""
    path = get_spec(route.backend_dialect or "").count_tokens_path
    if path is None:
        return None
    backend = get_dialect(route.backend_dialect or "")
    upstream_request = dataclasses.replace(request, model=route.backend_model_name, stream=False)
    payload = backend.encode_request(upstream_request, EncodeOptions(default_max_tokens=route.default_max_tokens))
    if isinstance(payload, dict):
        payload.pop("max_tokens", None)
        payload.pop("stream", None)
    headers = translated_request_headers(
        client_headers, route, backend.upstream_headers(upstream_request, client_headers)
    )
    check_header_values(headers)
    return UpstreamCall("POST", join_url(route.backend_base_url, path), headers, orjson.dumps(payload), route)


def plan_passthrough(
    route: Route,
    target: Target,
    method: str,
    raw_headers: RawHeaders,
    query: bytes,
    body: bytes,
    doc: Any,
    edited: bool,
) -> UpstreamCall:
    """Proxy mode: the same request toward the route's upstream, model (and key) rewritten.

    ``doc`` is the parsed body (or None); when ``edited``, it was changed in place (prompt edits) and is
    re-serialised; otherwise only the bytes of the top-level ``model`` change.
    """
    rest = target.rest
    endpoint = target.endpoint
    model_in_path = endpoint is not None and endpoint.model_in_path
    if endpoint is not None and model_in_path:
        rest = endpoint.path_for(route.backend_model_name)
    model = doc.get("model") if isinstance(doc, dict) and not model_in_path else None
    rename = isinstance(model, str) and model != route.backend_model_name
    if edited:
        # Prompt edits re-serialise the body (same keys, order and values, compact spacing).
        body = orjson.dumps({**doc, "model": route.backend_model_name} if rename else doc)
    elif rename:
        spliced = replace_model(body, str(model), route.backend_model_name)
        # When the bytes cannot be changed in place safely (duplicate or escaped keys), the body is re-serialised.
        body = spliced if spliced is not None else orjson.dumps({**doc, "model": route.backend_model_name})
    url = route.backend_base_url + rest
    if query:
        url += "?" + query.decode("latin-1")
    headers = proxy_request_headers(raw_headers, route)
    return UpstreamCall(method, url, headers, body, route, signs(route, target))
