"""Event-stream framing: our encoder against botocore's decoder, official vectors, splits, corruption, fuzz."""

from __future__ import annotations

import base64
import io
import random
import struct
import time
import zlib
from collections.abc import Sequence
from typing import Any

import boto3
import orjson
import pytest
import urllib3
from botocore import eventstream as bes
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EventStreamError as BotoEventStreamError

from llm_proxy.framing.eventstream import (
    CHUNK_PADDING,
    EVENTSTREAM_CONTENT_TYPE,
    EventStreamDecoder,
    EventStreamError,
    Frame,
    HeaderValue,
    chunk_event_json,
    chunk_frame,
    encode_message,
    exception_frame,
)

Headers = list[tuple[str, HeaderValue]]

# Official event-stream test vectors (smithy-typescript eventstream-codec test_vectors): base64 of whole frames.
VECTOR_EMPTY = "AAAAEAAAAAAFwkjrfZjI/w=="
VECTOR_INT32_HEADER = "AAAALQAAABBBxCS4CmV2ZW50LXR5cGUEAACgDHsnZm9vJzonYmFyJ3029ICg"
VECTOR_PAYLOAD_NO_HEADERS = "AAAAHQAAAAD9Uoxaeydmb28nOidiYXInfcNlOTY="
VECTOR_ONE_STR_HEADER = "AAAAPQAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
VECTOR_ALL_HEADERS = (
    "AAAAzAAAAK8PrmTKCmV2ZW50LXR5cGUEAACgDAxjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uCmJvb2wgZmFsc2UBCWJvb2wgdHJ1ZQAE"
    "Ynl0ZQLPCGJ5dGUgYnVmBgAUSSdtIGEgbGl0dGxlIHRlYXBvdCEJdGltZXN0YW1wCAAAAAAAhF/tBWludDE2AwAqBWludDY0BQAAAAACh1eyBHV1"
    "aWQJAQIDBAUGBwgJCgsMDQ4PEHsnZm9vJzonYmFyJ32rpfEM"
)
VECTOR_CORRUPTED_HEADER_LEN = "AAAAPQAAACEH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
VECTOR_CORRUPTED_HEADERS = "AAAAPQAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257YWZvbyc6J2Jhcid9jZwIsQ=="
VECTOR_CORRUPTED_LENGTH = "AAAAPgAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
VECTOR_CORRUPTED_PAYLOAD = "AAAAHQAAAAD9UoxaWydmb28nOidiYXInfcNlOTY="

TEAPOT = b"{'foo':'bar'}"

COMBOS: list[tuple[Headers, bytes]] = [
    ([], b""),
    ([], b"x"),
    ([(":event-type", "chunk")], b'{"a":1}'),
    ([("s", ""), ("b", b""), ("t", True), ("f", False)], b""),
    ([("i0", 0), ("imin", -(2**31)), ("imax", 2**31 - 1), ("neg", -1)], b"\x00\xff" * 10),
    ([("bytes", bytes(range(256)))], bytes(range(256))),
    ([("ünï", "värde ✓"), ("x" * 255, "y" * 1000)], "é".encode() * 300),
    ([("long", "z" * 0xFFFF)], b""),
    ([("big", b"\x01" * 0xFFFF)], b"p" * 70_000),
]


def _crc32_bitwise(data: bytes) -> int:
    """Reference CRC-32 (IEEE, reflected poly 0xEDB88320), independent of zlib, for the golden test."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _botocore_decode(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = bes.EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), bytes(m.payload)) for m in buffer]


def _frames(combos: Sequence[tuple[Headers, bytes]]) -> list[Frame]:
    return [Frame(headers=dict(h), payload=p) for h, p in combos]


def _feed_all(chunks: Sequence[bytes]) -> list[Frame]:
    decoder = EventStreamDecoder()
    out: list[Frame] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    assert decoder.pending == 0
    return out


# --- golden bytes ---------------------------------------------------------------------------------------------


def test_golden_small_frame_exact_bytes() -> None:
    # Header "a" = string "b", payload "x": lengths 16 + 6 + 1 = 23 total, 6 header bytes.
    lengths = b"\x00\x00\x00\x17\x00\x00\x00\x06"
    assert _crc32_bitwise(lengths) == 0x5E8131CE
    headers = b"\x01a\x07\x00\x01b"
    body = lengths + b"\x5e\x81\x31\xce" + headers + b"x"
    assert _crc32_bitwise(body) == 0x84AA2EAA
    expected = body + b"\x84\xaa\x2e\xaa"
    assert encode_message([("a", "b")], b"x") == expected
    assert expected.hex() == "00000017000000065e8131ce0161070001627884aa2eaa"


def test_official_vectors_encode_byte_for_byte() -> None:
    assert encode_message([], b"") == _b64(VECTOR_EMPTY)
    assert encode_message([("event-type", 40972)], TEAPOT) == _b64(VECTOR_INT32_HEADER)
    assert encode_message([], TEAPOT) == _b64(VECTOR_PAYLOAD_NO_HEADERS)
    assert encode_message([("content-type", "application/json")], TEAPOT) == _b64(VECTOR_ONE_STR_HEADER)


def test_official_all_headers_vector_decodes() -> None:
    frames = EventStreamDecoder().feed(_b64(VECTOR_ALL_HEADERS))
    assert frames == [
        Frame(
            headers={
                "event-type": 40972,
                "content-type": "application/json",
                "bool false": False,
                "bool true": True,
                "byte": -49,
                "byte buf": b"I'm a little teapot!",
                "timestamp": 8675309,
                "int16": 42,
                "int64": 42424242,
                "uuid": bytes(range(1, 17)),
            },
            payload=TEAPOT,
        )
    ]


@pytest.mark.parametrize(
    "vector", [VECTOR_CORRUPTED_HEADER_LEN, VECTOR_CORRUPTED_HEADERS, VECTOR_CORRUPTED_LENGTH, VECTOR_CORRUPTED_PAYLOAD]
)
def test_official_negative_vectors_rejected(vector: str) -> None:
    with pytest.raises(EventStreamError) as info:
        EventStreamDecoder().feed(_b64(vector))
    assert isinstance(info.value.__cause__, bes.ChecksumMismatch)


# --- round trips ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "payload"), COMBOS)
def test_round_trip_through_botocore_and_wrapper(headers: Headers, payload: bytes) -> None:
    data = encode_message(headers, payload)
    assert _botocore_decode(data) == [(dict(headers), payload)]
    assert EventStreamDecoder().feed(data) == [Frame(headers=dict(headers), payload=payload)]
    assert len(data) == struct.unpack("!I", data[:4])[0]


def test_header_order_is_preserved_on_the_wire() -> None:
    data = encode_message([("b", "1"), ("a", "2")], b"")
    assert data[12:24] == b"\x01b\x07\x00\x011\x01a\x07\x00\x012"


def test_every_split_offset_and_one_byte_at_a_time() -> None:
    small = [c for c in COMBOS if len(encode_message(*c)) < 600]
    stream = b"".join(encode_message(h, p) for h, p in small)
    expected = _frames(small)
    assert len(stream) > 100
    for cut in range(len(stream) + 1):
        assert _feed_all([stream[:cut], stream[cut:]]) == expected, cut
    assert _feed_all([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_pending_counts_an_incomplete_frame() -> None:
    frame = encode_message([("a", "b")], b"x")
    decoder = EventStreamDecoder()
    assert decoder.feed(frame + frame[:5]) == [Frame({"a": "b"}, b"x")]
    assert decoder.pending == 5
    assert decoder.feed(frame[5:]) == [Frame({"a": "b"}, b"x")]
    assert decoder.pending == 0


# --- corruption -----------------------------------------------------------------------------------------------


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x40,)) + data[index + 1 :]


@pytest.mark.parametrize(
    ("where", "index"),
    [("total length", 2), ("headers length", 6), ("prelude crc", 9), ("header", 14), ("payload", -6), ("crc", -2)],
)
def test_corruption_detected(where: str, index: int) -> None:
    good = encode_message([(":event-type", "chunk")], b'{"hello":"world"}')
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="invalid event-stream frame") as info:
        decoder.feed(_flip(good, index % len(good)))
    assert isinstance(info.value.__cause__, bes.ChecksumMismatch), where
    # The decoder stays failed: framing is lost, so even a good frame is refused now.
    with pytest.raises(EventStreamError):
        decoder.feed(good)


def _frame_with_valid_crcs(total: int, headers_len: int, rest: bytes) -> bytes:
    lengths = struct.pack("!II", total, headers_len)
    prelude = lengths + struct.pack("!I", zlib.crc32(lengths))
    body = prelude + rest
    return body + struct.pack("!I", zlib.crc32(body))


def test_crc_valid_but_impossible_lengths_rejected() -> None:
    # botocore alone would accept a 12-byte "frame"; our wrapper refuses lengths that cannot hold a frame.
    lengths = struct.pack("!II", 12, 0)
    with pytest.raises(EventStreamError, match="bad frame lengths"):
        EventStreamDecoder().feed(lengths + struct.pack("!I", zlib.crc32(lengths)))
    with pytest.raises(EventStreamError, match="bad frame lengths"):
        EventStreamDecoder().feed(_frame_with_valid_crcs(20, 5, b"abcd"))


def test_crc_valid_but_garbled_headers_rejected() -> None:
    unknown_type = b"\x01a\x0a"  # header type 10 does not exist
    with pytest.raises(EventStreamError) as info:
        EventStreamDecoder().feed(_frame_with_valid_crcs(16 + 3, 3, unknown_type))
    assert isinstance(info.value.__cause__, KeyError)
    duplicate = b"\x01a\x00\x01a\x01"
    with pytest.raises(EventStreamError) as info:
        EventStreamDecoder().feed(_frame_with_valid_crcs(16 + 6, 6, duplicate))
    assert isinstance(info.value.__cause__, bes.DuplicateHeader)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("a", "1"), ("a", "2")], "duplicate"),
        ([("", "1")], "1-255 bytes"),
        ([("n" * 256, "1")], "1-255 bytes"),
        ([("n", 2**31)], "int32"),
        ([("n", -(2**31) - 1)], "int32"),
        ([("n", "v" * 0x10000)], "too long"),
        ([("n", b"v" * 0x10000)], "too long"),
    ],
)
def test_encoder_rejects_unrepresentable_headers(headers: Headers, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_message(headers, b"")


# --- Bedrock frames -------------------------------------------------------------------------------------------


def test_chunk_frame_headers_and_payload() -> None:
    inner = b'{"type":"message_stop"}'
    [frame] = EventStreamDecoder().feed(chunk_frame(inner))
    assert frame.headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert orjson.loads(frame.payload) == {"bytes": base64.b64encode(inner).decode(), "p": CHUNK_PADDING}
    assert chunk_event_json(frame) == inner


def test_exception_frame_headers_and_payload() -> None:
    [frame] = EventStreamDecoder().feed(exception_frame("throttlingException", "slow down"))
    assert frame.headers == {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert frame.payload == b'{"message":"slow down"}'


def test_chunk_event_json_rejects_other_payloads() -> None:
    with pytest.raises(EventStreamError):
        chunk_event_json(Frame({}, b'{"message":"x"}'))
    with pytest.raises(EventStreamError):
        chunk_event_json(Frame({}, b'{"bytes":"not base64!"}'))


def _boto3_stream(body: bytes) -> Any:
    """invoke_model_with_response_stream through real boto3, with the HTTP response replaced by ``body``."""

    def respond(request: Any, **_: Any) -> AWSResponse:
        headers = {"content-type": EVENTSTREAM_CONTENT_TYPE}
        raw = urllib3.response.HTTPResponse(body=io.BytesIO(body), headers=headers, status=200, preload_content=False)
        return AWSResponse(request.url, 200, headers, raw)

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
    )
    client.meta.events.register("before-send", respond)
    return client.invoke_model_with_response_stream(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=b"{}")[
        "body"
    ]


def test_boto3_reads_our_chunk_and_exception_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    events = [b'{"type":"message_start"}', b'{"type":"message_stop"}']
    stream = _boto3_stream(b"".join(chunk_frame(e) for e in events))
    assert list(stream) == [{"chunk": {"bytes": e}} for e in events]

    failing = _boto3_stream(chunk_frame(events[0]) + exception_frame("throttlingException", "slow down"))
    iterator = iter(failing)
    assert next(iterator) == {"chunk": {"bytes": events[0]}}
    with pytest.raises(BotoEventStreamError) as info:
        next(iterator)
    assert info.value.response["Error"] == {"Code": "throttlingException", "Message": "slow down"}


# --- fuzz -----------------------------------------------------------------------------------------------------


def _random_value(rng: random.Random) -> HeaderValue:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.randint(-(2**31), 2**31 - 1)
    if kind == 2:
        return rng.randbytes(rng.randrange(40))
    return "".join(rng.choice("aé✓:-/ ") for _ in range(rng.randrange(30)))


def _random_frame(rng: random.Random) -> tuple[Headers, bytes]:
    names = rng.sample([":event-type", ":content-type", ":message-type", "a", "ü", "x" * 200], rng.randrange(5))
    return [(n, _random_value(rng)) for n in names], rng.randbytes(rng.choice((0, 1, 7, 100, 900)))


def _random_chunks(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randrange(1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_fuzz_random_frames_random_splits_and_single_flips() -> None:
    rng = random.Random(20240506)
    started = time.perf_counter()
    for _ in range(1000):
        combos = [_random_frame(rng) for _ in range(rng.randrange(1, 6))]
        encoded = [encode_message(h, p) for h, p in combos]
        stream = b"".join(encoded)
        assert _feed_all(_random_chunks(rng, stream)) == _frames(combos)

        # One flipped bit anywhere in frame k is always caught (CRC32 detects every single-bit error); the
        # frames decoded before the error are exactly a prefix of the good frames before k.
        k = rng.randrange(len(encoded))
        start = sum(len(e) for e in encoded[:k])
        index = start + rng.randrange(len(encoded[k]))
        corrupted = stream[:index] + bytes((stream[index] ^ (1 << rng.randrange(8)),)) + stream[index + 1 :]
        decoder = EventStreamDecoder()
        seen: list[Frame] = []
        with pytest.raises(EventStreamError):
            for chunk in _random_chunks(rng, corrupted):
                seen.extend(decoder.feed(chunk))
        assert seen == _frames(combos[: len(seen)]) and len(seen) <= k
    assert time.perf_counter() - started < 2.0
