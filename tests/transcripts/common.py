"""Helpers shared by the transcript tests: loading the recorded files, feeding decoders, parsing encoder output.

Recorded streams are fed to a decoder whole and split at every byte offset into two pieces (the split may fall
inside a line, a ``\\n\\n`` pair, a multi-byte UTF-8 character or a binary frame header); the events must be the
same whatever the split. Encoder output is parsed with a deliberately naive SSE reader written for these tests,
so that a mistake in the project's SSE parser cannot hide one in its SSE writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from llm_proxy.canonical import StreamEvent
from llm_proxy.dialects.base import StreamDecoder, StreamEncoder

HERE = Path(__file__).resolve().parent


def data_path(dialect_dir: str, name: str) -> Path:
    return HERE / dialect_dir / name


def read_bytes(dialect_dir: str, name: str) -> bytes:
    return data_path(dialect_dir, name).read_bytes()


def read_json(dialect_dir: str, name: str) -> Any:
    return orjson.loads(read_bytes(dialect_dir, name))


def read_jsonl(dialect_dir: str, name: str) -> list[Any]:
    return [orjson.loads(line) for line in read_bytes(dialect_dir, name).splitlines() if line.strip()]


@dataclass(frozen=True, slots=True)
class RecordedError:
    """A recorded HTTP error answer: status, headers and the body bytes as the vendor sent them."""

    status: int
    headers: dict[str, str]
    body: bytes


def read_error(dialect_dir: str, name: str) -> RecordedError:
    """An ``error_*.json`` file: ``{"status", "headers", "body"}`` (``body`` is the JSON the vendor answered)."""
    doc = read_json(dialect_dir, name)
    return RecordedError(status=doc["status"], headers=dict(doc.get("headers", {})), body=orjson.dumps(doc["body"]))


def decode_whole(decoder: StreamDecoder, data: bytes) -> list[StreamEvent]:
    return decoder.feed(data) + decoder.close()


def decode_split(decoder: StreamDecoder, data: bytes, cut: int) -> list[StreamEvent]:
    return decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.close()


def encode_all(encoder: StreamEncoder, events: list[StreamEvent]) -> bytes:
    return b"".join(encoder.encode(event) for event in events) + encoder.close()


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One SSE event as a client reads it: the ``event:`` line (None if absent) and the ``data:`` text."""

    event: str | None
    data: str


def parse_sse(raw: bytes) -> list[WireEvent]:
    """Split encoder output into events. Strict: every block must be ``event:``/``data:`` lines, nothing else."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), "an SSE stream must end with a blank line"
    out: list[WireEvent] = []
    for block in text[:-2].split("\n\n"):
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                assert event is None, f"two event lines in {block!r}"
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        assert data, f"an event without data: {block!r}"
        out.append(WireEvent(event=event, data="\n".join(data)))
    return out
