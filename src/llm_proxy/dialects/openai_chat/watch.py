"""The light stream watcher of Chat streams (see ``dialects.watch``).

Rule: once the first token was seen, a ``data:`` chunk is skipped undecoded when it is a JSON object whose
every ``"usage"`` and ``"finish_reason"`` key is followed by ``null`` (``stream_options.include_usage`` puts
``"usage":null`` on every chunk) and that holds no ``"error"``. ``[DONE]`` and anything else are decoded.
A key spelled with JSON escapes would not be recognised; no server writes one.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.openai_chat.stream import ChatStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher

_NULL_KEYS = (b'"usage"', b'"finish_reason"')


def _null_valued(data: bytes, key: bytes) -> bool:
    """Whether every occurrence of ``key`` in ``data`` is a key whose value is ``null``."""
    at = data.find(key)
    while at >= 0:
        at += len(key)
        rest = data[at : at + 24].lstrip()
        if not rest.startswith(b":") or not rest[1:].lstrip().startswith(b"null"):
            return False
        at = data.find(key, at)
    return True


def _skip(data: bytes) -> bool:
    return (
        data.startswith(b"{")
        and b'"error"' not in data
        and _null_valued(data, _NULL_KEYS[0])
        and _null_valued(data, _NULL_KEYS[1])
    )


def stream_watcher(request: Request) -> StreamWatcher[bytes]:
    return StreamWatcher(ChatStreamDecoder(request), _skip)
