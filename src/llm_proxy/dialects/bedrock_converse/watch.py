"""The light stream watcher of ConverseStream (see ``dialects.watch``).

Rule: once the first token was seen, an event frame whose ``:event-type`` is ``contentBlockDelta`` is
skipped undecoded (its payload is not parsed). Frames are still split and CRC-checked; ``messageStart``,
``contentBlockStart`` (a tool call), ``contentBlockStop``, ``messageStop``, ``metadata`` (usage) and
exception frames are decoded.
"""

from __future__ import annotations

from llm_proxy.canonical import Request
from llm_proxy.dialects.bedrock_converse.stream import ConverseStreamDecoder
from llm_proxy.dialects.watch import StreamWatcher
from llm_proxy.framing.eventstream import Frame


def _skip(frame: Frame) -> bool:
    headers = frame.headers
    return headers.get(":event-type") == "contentBlockDelta" and headers.get(":message-type") == "event"


def stream_watcher(request: Request) -> StreamWatcher[Frame]:
    return StreamWatcher(ConverseStreamDecoder(request), _skip)
