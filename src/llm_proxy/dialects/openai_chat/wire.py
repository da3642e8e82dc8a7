"""What every module of the Chat codec shares: the dialect's names and its JSON reader.

``read`` words a malformed field as Chat does (the path in backticks); it raises ``jsonread.Invalid``,
which ``decode_request`` turns into a ``RequestError`` naming the field and ``decode_response`` into an
``UpstreamError``. Decoders keep the wire fields without a canonical home (``jsonread.rest``) for the
same-dialect round trip.
"""

from __future__ import annotations

import logging

from llm_proxy.canonical import Request
from llm_proxy.dialects.jsonread import Reader

NAME = "openai-chat"
FAMILY = frozenset({NAME})
"""The ``dialects`` of the ``Opaque`` parts and ``HostedTool`` s this codec creates."""
REASONING_CARRY = "openai-reasoning"
"""The carry envelope kind of an OpenAI reasoning item shown to a Chat client as a thinking block."""

log = logging.getLogger("llm_proxy.dialects.openai_chat")

read = Reader(quote_paths=True)
"""The codec's JSON reader, in Chat's wording (``"`messages[0].role` must be a string"``)."""


def from_chat(request: Request) -> bool:
    """Whether ``request`` was decoded by this codec (its wire details can be written back)."""
    return request.origin == NAME
