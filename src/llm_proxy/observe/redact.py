"""Redaction of the configured secrets from everything the proxy emits.

The proxy holds credentials (``backend_api_key``, AWS secret keys and session tokens) that must never
leave toward anyone but their own upstream. An upstream can echo the credential it received (some
servers put the presented key into a 401 body), and that text would otherwise reach the client (an
error body relayed in proxy mode, an error message translated into the client's dialect) and the
log. Every such path runs through one ``Redactor`` built from the config: error bodies and response
headers on their way to the client, translated error messages, and every formatted log line.

Matching is exact substring matching (a compiled alternation, longest first), in text and in bytes.
Values shorter than ``MIN_SECRET_LENGTH`` are not treated as secrets: replacing every occurrence of
a two-letter "key" would mangle unrelated text, and no real credential is that short.

Most text holds no secret, and finding that out is what every log line and every response's headers pay
for. Up to ``SCAN_LIMIT`` secrets, it is a ``in`` test per secret (the string search of CPython, which
skips ahead), and the alternation runs only on text that holds one: ``re``'s search of an alternation of
unrelated literals tries the alternation at every position that starts like one of them, 4 to 10 times
slower for a few secrets on a log line, and 20 to 40 times on a 4 KB body (measured on Python 3.11).
Beyond ``SCAN_LIMIT`` secrets the alternation searches alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import AnyStr

MASK = "[redacted]"
_MASK_BYTES = MASK.encode()
MIN_SECRET_LENGTH = 6
SCAN_LIMIT = 32
"""Secrets tested one by one (``in``) before the alternation runs, at most; more, and the alternation alone."""


class Redactor:
    """Replaces every known secret with ``[redacted]``. Empty (matches nothing) until given secrets."""

    __slots__ = ("_text", "_bytes", "_secrets", "_few", "_few_bytes")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None
        self._secrets: frozenset[str] = frozenset()
        self._few: tuple[str, ...] | None = None
        """The secrets, when they are few enough to be looked for one by one first (``SCAN_LIMIT``)."""
        self._few_bytes: tuple[bytes, ...] | None = None
        self.update(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too (a reloaded config brings new keys; requests in flight may still hold the old ones)."""
        self.update(self._secrets | set(secrets))

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of secrets.

        A line masked meanwhile (another thread) is masked as before or as after: the one-by-one test is off while
        the patterns change (the alternation alone is always right for the pattern it reads)."""
        self._few = self._few_bytes = None
        self._secrets = frozenset(secrets)
        unique = sorted({s for s in self._secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        if not unique:
            self._text = self._bytes = None
            return
        self._text = re.compile("|".join(re.escape(s) for s in unique))
        self._bytes = re.compile(b"|".join(re.escape(s.encode("utf-8")) for s in unique))
        few = len(unique) <= SCAN_LIMIT
        self._few = tuple(unique) if few else None
        self._few_bytes = tuple(s.encode("utf-8") for s in unique) if few else None

    @property
    def active(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        """``value`` with every secret masked (``value`` itself when it holds none)."""
        pattern = self._text
        if pattern is None or not _holds(value, self._few, pattern):
            return value
        return pattern.sub(MASK, value)

    def data(self, value: bytes) -> bytes:
        """``value`` with every secret masked (``value`` itself when it holds none)."""
        pattern = self._bytes
        if pattern is None or not self.found_in(value):
            return value
        return pattern.sub(_MASK_BYTES, value)

    def found_in(self, value: bytes) -> bool:
        pattern = self._bytes
        return pattern is not None and _holds(value, self._few_bytes, pattern)

    def headers(self, raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Response headers with secrets masked in their values (the list itself when none holds one)."""
        pattern = self._bytes
        if pattern is None or not any(self.found_in(v) for _, v in raw):
            return raw
        return [(k, pattern.sub(_MASK_BYTES, v)) for k, v in raw]


def _holds(value: AnyStr, few: tuple[AnyStr, ...] | None, pattern: re.Pattern[AnyStr]) -> bool:
    """Whether ``value`` holds a secret: each of ``few`` looked for with ``in``, or, when there are more than
    ``SCAN_LIMIT`` (``few`` is None), ``pattern``'s search."""
    if few is None:
        return pattern.search(value) is not None
    for secret in few:
        if secret in value:
            return True
    return False


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, arguments and traceback alike) has the secrets masked.

    With ``inner`` (a JSON formatter, say) the line is that formatter's, masked the same way: the mask has no
    character JSON escapes, so a masked JSON line stays valid JSON.
    """

    def __init__(self, redactor: Redactor, fmt: str | None = None, *, inner: logging.Formatter | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record) if self.inner is not None else super().format(record)
        return self.redactor.text(line)
