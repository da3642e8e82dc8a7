"""AWS event-stream framing: the binary envelope of Bedrock's streaming responses. No I/O.

A stream is a sequence of self-delimiting frames, all integers big-endian::

    [total_len u32][headers_len u32][prelude_crc u32][headers][payload][message_crc u32]

``prelude_crc`` is the CRC32 of the first 8 bytes and ``message_crc`` the CRC32 of everything before it
(``zlib.crc32``). A header is ``name_len u8 | name | type u8 | value``.

Decoding wraps ``botocore.eventstream.EventStreamBuffer``, so the proxy checks CRCs exactly as boto3 does.
botocore ships a decoder but no encoder, so :func:`encode_message` is written here by hand; it is small and
is tested against botocore's decoder.

Header values map to wire types as follows when encoding: ``bool`` -> 0/1 (true/false), ``int`` -> 4 (int32,
the type Bedrock never needs but other AWS streams use for counters; values outside int32 are rejected rather
than silently widened), ``bytes`` -> 6 (byte array), ``str`` -> 7 (UTF-8 string). Decoding also yields ``int``
for the byte/short/long/timestamp types and ``bytes`` for UUIDs, as botocore does.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from botocore import eventstream as _bes

HeaderValue = str | bytes | bool | int

# Below this size a frame cannot even hold its prelude and message CRC.
_MIN_FRAME = 16
_PRELUDE = struct.Struct("!III")
_CRC = struct.Struct("!I")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# Real Bedrock adds a "p" field of filler letters to each chunk so that frame sizes do not reveal token
# lengths. Clients ignore it; a constant keeps our output deterministic and testable.
CHUNK_PADDING = "abcdefghijklmnop"

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


class EventStreamError(ValueError):
    """A frame failed its CRC check or is malformed; the stream cannot be resynchronised after it."""


@dataclass(frozen=True, slots=True)
class Frame:
    headers: dict[str, HeaderValue]
    payload: bytes


def _encode_header_value(value: HeaderValue) -> bytes:
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return b"\x00" if value else b"\x01"
    if isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise ValueError(f"event-stream int header out of int32 range: {value}")
        return b"\x04" + struct.pack("!i", value)
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) > 0xFFFF:
        raise ValueError(f"event-stream header value too long: {len(raw)} bytes")
    kind = b"\x07" if isinstance(value, str) else b"\x06"
    return kind + struct.pack("!H", len(raw)) + raw


def _encode_headers(headers: Sequence[tuple[str, HeaderValue]]) -> bytes:
    parts: list[bytes] = []
    seen: set[str] = set()
    for name, value in headers:
        # botocore rejects a frame with a repeated header name, so never produce one.
        if name in seen:
            raise ValueError(f"duplicate event-stream header: {name!r}")
        seen.add(name)
        raw_name = name.encode("utf-8")
        if not 0 < len(raw_name) <= 0xFF:
            raise ValueError(f"event-stream header name must be 1-255 bytes: {name!r}")
        parts.append(bytes((len(raw_name),)) + raw_name + _encode_header_value(value))
    return b"".join(parts)


def encode_message(headers: Sequence[tuple[str, HeaderValue]], payload: bytes) -> bytes:
    """One complete frame: prelude, prelude CRC, headers (in the given order), payload, message CRC."""
    header_bytes = _encode_headers(headers)
    total = _MIN_FRAME + len(header_bytes) + len(payload)
    lengths = struct.pack("!II", total, len(header_bytes))
    prelude = lengths + _CRC.pack(zlib.crc32(lengths))
    body = prelude + header_bytes + payload
    return body + _CRC.pack(zlib.crc32(body))


def event_frame(event_type: str, payload: bytes) -> bytes:
    """A modelled event of a JSON event stream (``chunk`` of InvokeModel's, ``messageStart`` of Converse's, ...)."""
    # Header order as real Bedrock sends it.
    headers: list[tuple[str, HeaderValue]] = [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ]
    return encode_message(headers, payload)


def chunk_frame(event_json: bytes) -> bytes:
    """A Bedrock InvokeModelWithResponseStream ``chunk`` event carrying one inner (e.g. Messages) event JSON."""
    payload = orjson.dumps({"bytes": base64.b64encode(event_json).decode("ascii"), "p": CHUNK_PADDING})
    return event_frame("chunk", payload)


def exception_frame(exception_type: str, message: str) -> bytes:
    """A modelled stream exception such as ``throttlingException``; boto3 raises it as an EventStreamError."""
    headers: list[tuple[str, HeaderValue]] = [
        (":exception-type", exception_type),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return encode_message(headers, orjson.dumps({"message": message}))


def header_text(value: HeaderValue | None) -> str:
    """A header value that should be a string (botocore yields bytes/ints for other header types)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def chunk_event_json(frame: Frame) -> bytes:
    """The inner event JSON of a ``chunk`` frame (the base64 ``bytes`` field, decoded)."""
    try:
        data = orjson.loads(frame.payload)
        return base64.b64decode(data["bytes"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EventStreamError('chunk frame payload is not {"bytes": <base64>}') from exc


class _StrictBuffer(_bes.EventStreamBuffer):  # type: ignore[misc]  # botocore is untyped
    """botocore's buffer plus the length sanity checks it omits.

    botocore accepts a CRC-valid prelude whose total length is below 16 bytes or whose header length exceeds
    the frame, and then slices nonsense; reject those as malformed instead.
    """

    def _validate_prelude(self, prelude: _bes.MessagePrelude) -> None:
        super()._validate_prelude(prelude)
        if prelude.total_length < _MIN_FRAME or prelude.headers_length > prelude.total_length - _MIN_FRAME:
            raise _bes.ParserError(f"bad frame lengths: total {prelude.total_length}, headers {prelude.headers_length}")


# What botocore raises on bad input: its own ParserError family for CRC and length errors; struct.error,
# KeyError (unknown header type) and UnicodeDecodeError from its header parser for garbled headers.
_BOTOCORE_ERRORS = (_bes.ParserError, struct.error, KeyError, UnicodeDecodeError)


class EventStreamDecoder:
    """Incremental decoder: ``feed`` bytes split anywhere, get back the frames completed so far.

    After an error the decoder stays failed: with framing lost there is no safe place to resume.
    """

    __slots__ = ("_buffer", "_failed", "_pending")

    def __init__(self) -> None:
        self._buffer = _StrictBuffer()
        self._failed: EventStreamError | None = None
        self._pending = 0

    def feed(self, data: bytes) -> list[Frame]:
        if self._failed is not None:
            raise self._failed
        self._buffer.add_data(data)
        self._pending += len(data)
        frames: list[Frame] = []
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                frames.append(Frame(headers=dict(message.headers), payload=bytes(message.payload)))
        except _BOTOCORE_ERRORS as exc:
            self._failed = EventStreamError(f"invalid event-stream frame: {exc}")
            raise self._failed from exc
        return frames

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete frame (non-zero at end of stream means truncation)."""
        return self._pending
