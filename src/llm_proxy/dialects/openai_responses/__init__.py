"""The OpenAI Responses API (``POST /v1/responses``) as a dialect: the wire format of Codex CLI.

A Responses conversation is a flat list of *items* (messages, function calls, function call outputs,
reasoning, hosted-tool calls) rather than a list of turns. Decoding regroups the items into canonical
turns: a run of model-side items (reasoning, function and custom tool calls, hosted-tool items and at
most one assistant message) becomes ONE assistant ``Message``, so that a Claude upstream sees one
assistant turn holding its thinking, text and ``tool_use`` blocks, exactly as it produced them.
Encoding walks the parts of each turn back into items in order, which makes the same-dialect round
trip exact (``docs/dialects/openai_responses.md`` lists the rules and the one exception).

Claude thinking reaches a Responses client as a ``reasoning`` item whose ``encrypted_content`` is a
``claude-thinking`` carry (``llm_proxy.framing.carry``); the client echoes it back and the decoder restores
the original block. Streams follow the event order of the Responses API (``event:`` lines, increasing
``sequence_number``, one output item at a time, ``response.output_item.done`` carrying the complete
item that Codex relies on).

The codec is one module per concept: ``wire`` (names and the JSON reader), ``request`` (the body's
top-level fields, both ways), ``items`` (input items, both ways), ``output`` (output items, status, usage),
``response``, and the stream in two modules, ``stream_decoder`` and ``stream_encoder`` (one would pass 500
lines); errors are shared with the Chat codec in ``llm_proxy.dialects.openai_errors``.
This module holds the ``Dialect`` object, ``DIALECT``, and re-exports the public names of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_proxy.canonical import JSON, ProxyError, Request, Response
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.openai_errors import RESPONSES_RULES, encode_error
from llm_proxy.dialects.openai_models import encode_model_list
from llm_proxy.dialects.openai_responses import watch
from llm_proxy.dialects.openai_responses.output import (
    custom_tool_input,
    decode_usage,
    encode_usage,
    response_id,
    summarize,
)
from llm_proxy.dialects.openai_responses.raw_edit import edit_system_raw
from llm_proxy.dialects.openai_responses.request import decode_request, effort_for_budget, encode_request
from llm_proxy.dialects.openai_responses.response import decode_response, encode_response
from llm_proxy.dialects.openai_responses.stream_decoder import ResponsesStreamDecoder
from llm_proxy.dialects.openai_responses.stream_encoder import ResponsesStreamEncoder
from llm_proxy.dialects.openai_responses.wire import FAMILY, NAME, log
from llm_proxy.prompt import SystemEdit

__all__ = [
    "DIALECT",
    "FAMILY",
    "NAME",
    "ResponsesDialect",
    "ResponsesStreamDecoder",
    "ResponsesStreamEncoder",
    "custom_tool_input",
    "decode_usage",
    "effort_for_budget",
    "encode_usage",
    "error_from_object",
    "log",
    "response_id",
]

error_from_object = RESPONSES_RULES.from_object
"""A canonical error from an OpenAI error object, read with the Responses rules (``openai_errors``)."""


class ResponsesDialect:
    """``openai-responses``: see the module docstring and ``docs/dialects/openai_responses.md``."""

    name = NAME

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        return decode_request(body, path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return encode_response(response, request)

    def stream_encoder(self, request: Request) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request)

    def upstream_path(self, request: Request) -> str:
        return "/v1/responses"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_response(body, request)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return summarize(body)

    def stream_decoder(self, request: Request) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return watch.stream_watcher(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return RESPONSES_RULES.decode(status, body, headers)

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        return encode_model_list(names)


DIALECT: Dialect = ResponsesDialect()  # annotated: mypy checks the class against the protocol
