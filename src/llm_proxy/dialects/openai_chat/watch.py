"""The light stream watcher of Chat streams (see ``dialects.watch``).

Rule: once the first token was seen, a ``data:`` chunk is skipped undecoded when it is a JSON object in which
every ``"usage"`` and ``"finish_reason"`` is immediately followed by ``:null`` (``stream_options.include_usage``
puts ``"usage":null`` on every chunk) and that holds no ``"error"``. ``[DONE]`` and anything else are decoded.
A key spelled with JSON escapes would not be recognised; no server writes one.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.openai_chat.stream import ChatStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher


def _skip(data: bytes) -> bool:
    # Counted in C over the chunk's bytes: cheaper than one JSON parse. Written with spaces, a null is not
    # recognised and the chunk is decoded (only a cost).
    return (
        data.startswith(b"{")
        and b'"error"' not in data
        and data.count(b'"usage"') == data.count(b'"usage":null')
        and data.count(b'"finish_reason"') == data.count(b'"finish_reason":null')
    )


def stream_watcher(request: Request) -> StreamWatcher[bytes]:
    return StreamWatcher(ChatStreamDecoder(request), _skip)
