"""What every part of the gemini codec shares: the dialect's name, its JSON reader, ids and carried signatures.

Gemini's reasoning state is a ``thoughtSignature`` on a part: on a thought part, or on the part the model
produced after thinking (often the first ``functionCall``). Other dialects have no place for a signature on
a text or a tool call, so the codec shows every signature as a signed thinking block whose signature is a carry
envelope (``llm_proxy.framing.carry``) of kind ``SIGNATURE_CARRY``: ``{"s": signature, "a": 1}`` when it sat on
the next part. Clients of every dialect echo thinking blocks verbatim, and the encoder puts the signature back
where it was. Reasoning of other vendors shown to a Gemini client rides in a ``thoughtSignature`` the same way
(``FOREIGN_CARRY``).
"""

from __future__ import annotations

import hashlib

from llm_proxy.canonical import JSON
from llm_proxy.dialects import get_spec
from llm_proxy.dialects.jsonread import Reader

NAME = "gemini"
FAMILY = frozenset({NAME})
"""Dialects that read Gemini parts and hosted tools as they are."""

SIGNATURE_CARRY = get_spec(NAME).signature_carry or ""
"""The registry names it: the mock signs as the codec decodes (``DialectSpec.signature_carry``)."""
FOREIGN_CARRY = "gemini-foreign"
MINTED_CALL_PREFIX = "gcall_"
"""Ids the codec gives function calls that had none: never written back toward Gemini."""

read = Reader()


def mint_call_id(name: str, arguments: str, position: str) -> str:
    """A stable id for a function call without one: the same call at the same place gets the same id."""
    digest = hashlib.sha256(f"{position}\x00{name}\x00{arguments}".encode()).hexdigest()[:20]
    return MINTED_CALL_PREFIX + digest


def is_minted(call_id: str) -> bool:
    return call_id.startswith(MINTED_CALL_PREFIX)


def text_of(value: JSON) -> str | None:
    return value if isinstance(value, str) else None
