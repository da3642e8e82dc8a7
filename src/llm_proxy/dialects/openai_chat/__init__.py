"""OpenAI Chat Completions (``openai-chat``): requests, responses, streams and errors.

Chat keeps a whole assistant turn in one message with separate fields (``content``, ``refusal``,
``tool_calls`` and the non-standard ``reasoning_content`` / ``thinking_blocks``), tool results in
``role:"tool"`` messages, and streams ``data:`` chunks whose deltas carry the same fields, ending with
``data: [DONE]``. This codec maps those fields onto the canonical parts and block events.

Three rules shape it:

* a chat request decoded and re-encoded comes back equal: wire fields without a canonical home go to
  ``extra`` (so do fields sent as ``null``), and the few wire choices with no canonical flag (legacy
  ``max_tokens``, ``stream: false``, absent assistant ``content``) are remembered there too;
* a request of another origin is reshaped for Chat: Claude-style tool results inside user turns
  become tool messages, images returned by a tool travel in a following user message (tool messages
  only take text), foreign thinking is dropped (Chat upstreams cannot verify it);
* toward a chat *client*, Claude thinking is shown as ``reasoning_content`` and carried exactly in
  ``thinking_blocks`` (LiteLLM's field), OpenAI reasoning inside a ``thinking_blocks`` entry whose
  signature is a carry envelope (``llm_proxy.framing.carry``).

See ``docs/dialects/openai_chat.md`` for the mapping tables.

The codec is one module per concept, each both ways: ``wire`` (names and the JSON reader), ``request``
(the body's top-level fields), ``messages`` (messages, parts, tool calls and results), ``thinking`` (thinking
and reasoning fields), ``response`` and ``stream``; errors are shared with the Responses codec in
``llm_proxy.dialects.openai_errors``. This module holds the ``Dialect`` object, ``DIALECT``, and re-exports
the public names of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_proxy.canonical import JSON, ProxyError, Request, Response
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.openai_chat import watch
from llm_proxy.dialects.openai_chat.raw_edit import edit_system_raw
from llm_proxy.dialects.openai_chat.request import decode_request, encode_request
from llm_proxy.dialects.openai_chat.response import decode_response, encode_response, summarize
from llm_proxy.dialects.openai_chat.stream import ChatStreamDecoder, ChatStreamEncoder
from llm_proxy.dialects.openai_chat.wire import NAME, log
from llm_proxy.dialects.openai_errors import CHAT_RULES, encode_error
from llm_proxy.dialects.openai_models import encode_model_list
from llm_proxy.prompt import SystemEdit

__all__ = [
    "DIALECT",
    "NAME",
    "ChatStreamDecoder",
    "ChatStreamEncoder",
    "OpenAIChatDialect",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "log",
]


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    """An upstream's HTTP error, read with Chat's rules (``openai_errors.CHAT_RULES``)."""
    return CHAT_RULES.decode(status, body, headers)


class OpenAIChatDialect:
    name = NAME

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        return decode_request(body, path_model=path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return encode_response(response, request)

    def stream_encoder(self, request: Request) -> ChatStreamEncoder:
        return ChatStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return {}

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request, options)

    def upstream_path(self, request: Request) -> str:
        return "/v1/chat/completions"

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        return {}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return decode_response(body, request)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return summarize(body)

    def stream_decoder(self, request: Request) -> ChatStreamDecoder:
        return ChatStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return watch.stream_watcher(request)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return decode_error(status, body, headers)

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        return encode_model_list(names)


DIALECT: Dialect = OpenAIChatDialect()
