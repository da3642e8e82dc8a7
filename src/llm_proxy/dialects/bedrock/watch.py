"""The light stream watcher's test for InvokeModelWithResponseStream (see ``dialects.watch``).

Each ``chunk`` frame carries one Messages event as base64 in ``{"bytes": ...}``. Rule: once the first token
was seen, a chunk frame is skipped undecoded when its payload begins with ``{"bytes":"`` followed by the
base64 of ``{"type":"content_bloc`` (21 bytes: 28 base64 characters that do not depend on what follows),
i.e. a ``content_block_start``/``delta``/``stop`` event, which carries no usage, stop reason or error.
Frames are still split and CRC-checked; every other frame (message events, exceptions) is decoded.
"""

from __future__ import annotations

import base64

from llm_proxy.framing.eventstream import Frame

_CONTENT_PREFIX = b'{"bytes":"' + base64.b64encode(b'{"type":"content_bloc')


def skip(frame: Frame) -> bool:
    headers = frame.headers
    return (
        frame.payload.startswith(_CONTENT_PREFIX)
        and headers.get(":event-type") == "chunk"
        and headers.get(":message-type") == "event"
    )
