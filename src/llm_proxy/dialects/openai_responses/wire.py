"""What every module of the Responses codec shares: the dialect's names and its JSON reader.

``read`` raises ``jsonread.Invalid`` on a malformed field; ``decode_request`` turns it into a
``RequestError`` naming the field, ``decode_response`` into an ``UpstreamError``. Decoders keep the wire
fields without a canonical home (and known ones given as null) with ``jsonread.rest`` and the encoder puts
them back with ``jsonread.merge_extra``, which makes the same-dialect round trip exact.
"""

from __future__ import annotations

import logging

from llm_proxy.canonical import JSON, Request, Tool
from llm_proxy.dialects.jsonread import Reader

NAME = "openai-responses"
FAMILY: frozenset[str] = frozenset({NAME})
"""The ``dialects`` of the ``Opaque`` parts and ``HostedTool`` s this codec creates."""

log = logging.getLogger("llm_proxy.dialects.openai_responses")

read = Reader()
"""The codec's JSON reader (``"input[0].role must be a string"``)."""


def is_content_part_type(kind: JSON) -> bool:
    """Whether ``kind`` names a message content part (``input_*``, ``output_*``, ``refusal``) rather than an item.

    Kept-as-is (opaque) values are told apart by this test alone when a turn is re-encoded, so the request
    decoder refuses content parts and items that it would misfile.
    """
    return isinstance(kind, str) and (kind.startswith(("input_", "output_")) or kind == "refusal")


def default_text_type(role: str) -> str:
    return "output_text" if role == "assistant" else "input_text"


def custom_names(request: Request) -> frozenset[str]:
    """Names of the tools the client declared as freeform ``custom`` tools."""
    return frozenset(t.name for t in request.tools or () if isinstance(t, Tool) and t.kind == "custom")
