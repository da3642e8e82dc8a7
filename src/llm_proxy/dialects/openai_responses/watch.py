"""The light stream watcher of Responses streams (see ``dialects.watch``).

Rule: once the first token was seen, an SSE event is skipped undecoded unless its ``event:`` name is one of
``response.created``/``in_progress`` (model), ``response.output_item.added``/``done`` (whether the answer
calls a tool, which decides the stop reason), ``response.completed``/``incomplete``/``failed`` (stop reason
and usage) or ``error``, or it has no name. The skipped ones are the deltas and the content part events.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.openai_responses.stream_decoder import ResponsesStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher
from llm_proxy.framing.sse import SSEEvent

_DECODED = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    }
)


def _skip(sse: SSEEvent) -> bool:
    return sse.event is not None and sse.event not in _DECODED


def stream_watcher(request: Request) -> StreamWatcher[SSEEvent]:
    return StreamWatcher(ResponsesStreamDecoder(request), _skip)
