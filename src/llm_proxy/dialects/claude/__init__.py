"""The ``claude`` dialect: Anthropic's Messages API (``POST /v1/messages``).

Anthropic's block model is the richest of the four dialects, so this codec is mostly a one-to-one
mapping onto the canonical types: text, image, tool_use, tool_result, thinking (with signature) and
redacted_thinking blocks have canonical parts; every other block (documents, server-tool blocks,
search results) travels as ``Opaque`` for the claude/bedrock family, and every wire field without a
canonical field is kept in ``extra`` so that a Claude request decodes and re-encodes to an equal body.

Toward a Claude upstream the encoder also accepts requests of *other* origins and reshapes them into
what the Messages API accepts: system and developer messages are hoisted into ``system``, OpenAI
``tool`` messages become ``tool_result`` blocks at the head of one user turn, data-URL images become
base64 sources, reasoning effort becomes a thinking budget, and fields Claude would reject are dropped
(with a debug log). The mapping tables are in ``docs/dialects/claude.md``.

The Messages body is shared with Bedrock, whose envelope differs only in ``model``/``stream`` and
auth: ``encode_body``/``decode_body``, ``encode_message``/``decode_message`` and the stream classes'
``feed_event``/``encode_objects`` are the reusable pieces.

The codec is one module per concept: ``wire`` (constants, ids and the JSON reader), ``blocks`` (content blocks),
``conversation`` (system hoisting and turns), ``request``, ``response``, ``stream`` and ``errors``. This
module holds the ``Dialect`` object, ``DIALECT``, and re-exports the public names of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from llm_proxy.canonical import JSON, ProxyError, Request, Response
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.claude import watch
from llm_proxy.dialects.claude.blocks import reasoning_signature, tool_input
from llm_proxy.dialects.claude.errors import (
    ERROR_KINDS,
    ERROR_TYPES,
    decode_error,
    decode_error_event,
    encode_error,
    error_json,
)
from llm_proxy.dialects.claude.raw_edit import edit_system_raw
from llm_proxy.dialects.claude.request import decode_body, encode_body
from llm_proxy.dialects.claude.response import (
    custom_tool_names,
    decode_message,
    encode_message,
    stop_reason_json,
    summarize,
    unwrap_custom_json,
    usage_json,
)
from llm_proxy.dialects.claude.stream import ClaudeStreamDecoder, ClaudeStreamEncoder
from llm_proxy.dialects.claude.wire import (
    ANTHROPIC_VERSION,
    BEDROCK_ENVELOPE,
    CUSTOM_TOOL_SCHEMA,
    DEFAULT_INPUT_SCHEMA,
    EFFORT_BUDGETS,
    FAMILY,
    MIN_THINKING_BUDGET,
    NAME,
    message_id,
    tool_id,
)
from llm_proxy.dialects.jsonread import header
from llm_proxy.errors import RequestError
from llm_proxy.prompt import SystemEdit

__all__ = [
    "ANTHROPIC_VERSION",
    "BEDROCK_ENVELOPE",
    "CUSTOM_TOOL_SCHEMA",
    "DEFAULT_INPUT_SCHEMA",
    "DIALECT",
    "EFFORT_BUDGETS",
    "ERROR_KINDS",
    "ERROR_TYPES",
    "FAMILY",
    "MIN_THINKING_BUDGET",
    "NAME",
    "ClaudeDialect",
    "ClaudeStreamDecoder",
    "ClaudeStreamEncoder",
    "custom_tool_names",
    "decode_body",
    "decode_error_event",
    "decode_message",
    "encode_body",
    "edit_system_raw",
    "encode_message",
    "error_json",
    "message_id",
    "reasoning_signature",
    "stop_reason_json",
    "tool_id",
    "tool_input",
    "unwrap_custom_json",
    "usage_json",
]


class ClaudeDialect:
    name = NAME

    # -- client side ------------------------------------------------------------------------

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        model = body.get("model", path_model)
        if not isinstance(model, str) or not model:
            raise RequestError("model is required and must be a string", param="model")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise RequestError("stream must be a boolean", param="stream")
        request = decode_body(body, model=model, origin=NAME)
        if "stream" in body and not stream:
            # an explicit false/null is not the canonical default's absence: keep it for the round trip
            return replace(request, extra={**request.extra, "stream": stream})
        return replace(request, stream=bool(stream))

    def encode_response(self, response: Response, request: Request) -> bytes:
        return orjson.dumps(encode_message(response, request))

    def stream_encoder(self, request: Request) -> ClaudeStreamEncoder:
        return ClaudeStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    # -- upstream side ----------------------------------------------------------------------

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        body: dict[str, JSON] = {"model": request.model, **encode_body(request, options)}
        if request.stream:
            body["stream"] = True
        elif request.origin in FAMILY and "stream" in request.extra:
            body["stream"] = request.extra["stream"]
        return body

    def upstream_path(self, request: Request) -> str:
        return "/v1/messages"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {"anthropic-version": header(client_headers, "anthropic-version") or ANTHROPIC_VERSION}
        beta = header(client_headers, "anthropic-beta") or _bedrock_betas(request)
        if beta:
            headers["anthropic-beta"] = beta
        return headers

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_message(body, request)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return summarize(body)

    def stream_decoder(self, request: Request) -> ClaudeStreamDecoder:
        return ClaudeStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return watch.stream_watcher(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return decode_error(status, body, headers)

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        data = [{"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"} for n in names]
        first, last = (names[0], names[-1]) if names else (None, None)
        return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})


def _bedrock_betas(request: Request) -> str | None:
    """A Bedrock client's body ``anthropic_beta`` list, as Anthropic's ``anthropic-beta`` header."""
    betas = request.extra.get("anthropic_beta") if request.origin == "bedrock" else None
    if isinstance(betas, list) and betas and all(isinstance(b, str) for b in betas):
        return ",".join(betas)
    return None


DIALECT: Dialect = ClaudeDialect()  # annotated: mypy checks the class against the protocol
