"""The light stream watcher of Messages streams (see ``dialects.watch``).

Rule: once the first token was seen, an SSE event is skipped undecoded when its ``event:`` name is one that
carries no usage, stop reason or error (``content_block_*``, ``ping``); ``message_start``, ``message_delta``,
``message_stop``, ``error`` and events without a name are decoded.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.claude.stream import ClaudeStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher
from llm_proxy.framing.sse import SSEEvent

CONTENT_EVENTS = frozenset({"content_block_start", "content_block_delta", "content_block_stop", "ping"})
"""Messages events that carry content only (their ``type`` is also their SSE event name)."""


def _skip(sse: SSEEvent) -> bool:
    return sse.event in CONTENT_EVENTS


def stream_watcher(request: Request) -> StreamWatcher[SSEEvent]:
    return StreamWatcher(ClaudeStreamDecoder(request), _skip)
