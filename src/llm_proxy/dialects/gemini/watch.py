"""The light stream watcher of Gemini streams (see ``dialects.watch``).

Rule: once the first token was seen, a chunk (an SSE event's data or a JSON array element) is skipped
undecoded when it holds none of ``"usageMetadata"`` (usage), ``"finishReason"`` and ``"promptFeedback"``
(stop reason), ``"functionCall"`` (a tool call makes the stop reason ``tool_use``) and ``"error"``.
Streams that put ``usageMetadata`` on every chunk are therefore decoded whole: the usage of the chunk
before the last is not known to be superseded until the last arrives.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.gemini.stream import GeminiStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher

_NEEDED = (b'"usageMetadata"', b'"finishReason"', b'"promptFeedback"', b'"functionCall"', b'"error"')


def _skip(data: bytes) -> bool:
    return not any(key in data for key in _NEEDED)


def stream_watcher(request: Request) -> StreamWatcher[bytes]:
    return StreamWatcher(GeminiStreamDecoder(request), _skip)
