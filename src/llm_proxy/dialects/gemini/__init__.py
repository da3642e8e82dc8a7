"""The ``gemini`` dialect: Google's Gemini API (``models/{model}:generateContent`` and its stream).

Requests name the model in the path and stream on ``:streamGenerateContent`` (SSE with ``?alt=sse``, else a
JSON array written progressively). Content is ``contents`` of ``user``/``model`` turns holding parts: text,
thoughts, inline images, function calls and responses (often without ids: minted and matched here), each
part possibly signed (``thoughtSignature``, carried through other dialects as signed thinking; see ``wire``).
Errors are Google's ``{"error": {code, message, status}}``. The mapping tables are in ``docs/dialects/gemini.md``.

The codec is one module per concept: ``wire`` (names, ids, the reader), ``parts``, ``request``, ``response``,
``framing`` (the JSON array splitter), ``stream``, ``errors`` and ``raw_edit``; this module holds ``DIALECT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from llm_proxy.canonical import JSON, ProxyError, Request, Response
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.gemini import watch
from llm_proxy.dialects.gemini.errors import decode_error, encode_error
from llm_proxy.dialects.gemini.raw_edit import edit_system_raw
from llm_proxy.dialects.gemini.request import decode_request, encode_request
from llm_proxy.dialects.gemini.response import decode_response, encode_response, summarize
from llm_proxy.dialects.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder
from llm_proxy.dialects.gemini.wire import NAME
from llm_proxy.prompt import SystemEdit

__all__ = ["DIALECT", "NAME", "GeminiDialect", "GeminiStreamDecoder", "GeminiStreamEncoder"]

API_VERSION = "v1beta"
"""The API version of upstream calls (thinking, ``parametersJsonSchema`` and ``responseJsonSchema`` need it)."""


class GeminiDialect:
    name = NAME

    # -- client side ------------------------------------------------------------------------

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        return decode_request(body, path_model, query)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return orjson.dumps(encode_response(response, request))

    def stream_encoder(self, request: Request) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    # -- upstream side ----------------------------------------------------------------------

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request, options)

    def upstream_path(self, request: Request) -> str:
        model = quote(request.model.removeprefix("models/"), safe="")
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return f"/{API_VERSION}/models/{model}:{method}"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_response(body, request)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return summarize(body)

    def stream_decoder(self, request: Request) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return watch.stream_watcher(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return decode_error(status, body, headers)

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        models = [
            {
                "name": f"models/{n}",
                "version": "001",
                "displayName": n,
                "description": "",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for n in names
        ]
        return orjson.dumps({"models": models})


DIALECT: Dialect = GeminiDialect()  # annotated: mypy checks the class against the protocol
