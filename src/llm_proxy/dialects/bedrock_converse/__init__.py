"""The ``bedrock-converse`` dialect: Amazon Bedrock's Converse API (``/model/{modelId}/converse``, ``converse-stream``).

Converse is Bedrock's model-neutral chat API: camelCase JSON whose content blocks are one-key unions
(``text``, ``image``, ``document``, ``toolUse``, ``toolResult``, ``reasoningContent``, ``cachePoint``), a
top-level ``system`` list, ``inferenceConfig``, ``toolConfig`` and the model's own fields in
``additionalModelRequestFields``. Streams are AWS event streams whose frames are the events themselves
(``messageStart`` ... ``metadata``). Errors, exception frames and the auth (SigV4 or a Bedrock API key) are
Bedrock's, shared with the ``bedrock`` dialect: its error rendering and reading are reused as they are.

The codec is one module per concept: ``wire`` (names, the reader, cache points, image formats), ``blocks``,
``request``, ``response``, ``stream`` and ``raw_edit``; this module holds the ``Dialect`` object, ``DIALECT``.
Mapping tables: ``docs/dialects/bedrock-converse.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llm_proxy.canonical import JSON, ProxyError, Request, Response
from llm_proxy.dialects import bedrock, get_spec
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.bedrock_converse import watch
from llm_proxy.dialects.bedrock_converse.raw_edit import edit_system_raw
from llm_proxy.dialects.bedrock_converse.request import decode_request, encode_request
from llm_proxy.dialects.bedrock_converse.response import (
    decode_response,
    encode_response,
    stop_reason_json,
    summarize,
    usage_json,
)
from llm_proxy.dialects.bedrock_converse.stream import (
    ConverseStreamDecoder,
    ConverseStreamEncoder,
    stream_exception_type,
)
from llm_proxy.dialects.bedrock_converse.wire import NAME
from llm_proxy.framing.eventstream import EVENTSTREAM_CONTENT_TYPE
from llm_proxy.prompt import SystemEdit

__all__ = [
    "DIALECT",
    "NAME",
    "ConverseDialect",
    "ConverseStreamDecoder",
    "ConverseStreamEncoder",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "stop_reason_json",
    "stream_exception_type",
    "usage_json",
]


class ConverseDialect:
    name = NAME

    # -- client side ------------------------------------------------------------------------

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        return decode_request(body, path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return orjson.dumps(encode_response(response, request))

    def stream_encoder(self, request: Request) -> ConverseStreamEncoder:
        return ConverseStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return bedrock.encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}  # Converse answers carry their usage in the body, not in X-Amzn-Bedrock-* headers

    # -- upstream side ----------------------------------------------------------------------

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request, options)

    def upstream_path(self, request: Request) -> str:
        return get_spec(NAME).endpoints[1 if request.stream else 0].path_for(request.model)

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {"accept": EVENTSTREAM_CONTENT_TYPE if request.stream else "application/json"}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_response(body, request)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return summarize(body)

    def stream_decoder(self, request: Request) -> ConverseStreamDecoder:
        return ConverseStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return watch.stream_watcher(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return bedrock.decode_error(status, body, headers)

    # -- proxy mode and listings -------------------------------------------------------------

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        return None  # Bedrock lists models in another service (ListFoundationModels), not under the runtime


DIALECT: Dialect = ConverseDialect()  # annotated: mypy checks the class against the protocol
