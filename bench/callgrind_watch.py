"""``python -m bench.callgrind_watch --measure``: instructions per streamed event to observe a relayed stream,
with each dialect's full stream decoder and with its light watcher (``Dialect.stream_watcher``).

The stream is the embedded mock's answer with ``N`` text deltas (one chunk per event, as relayed), made once;
a run feeds it to ``K`` fresh decoders. Under callgrind, runs of ``K`` and ``2K`` streams are counted and the
difference divided by ``K`` × the stream's events: start-up and imports cancel out. One run, for
``callgrind_annotate``: ``valgrind --tool=callgrind python -m bench.callgrind_watch claude watch 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from llm_proxy.canonical import Message, Request, Text
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.upstream.mock import MockOptions, MockUpstream

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = ("openai-chat", "openai-responses", "claude", "bedrock", "bedrock-converse", "gemini")
DELTAS = 200
_TOTAL = re.compile(r"^summary:\s+(\d+)", re.M)


def stream(dialect: str) -> tuple[Request, list[bytes]]:
    """The request and the chunks of the mock's streamed answer (``DELTAS`` text deltas, usage at the end)."""
    codec = get_dialect(dialect)
    message = Message(role="user", content=(Text(text="say something"),))
    request = Request(model="mock-model", messages=(message,), stream=True, include_usage=True)
    body = orjson.dumps(codec.encode_request(request, EncodeOptions()))
    mock = MockUpstream(MockOptions(events=DELTAS, response_bytes=4 * DELTAS))
    reply = mock.answer("POST", codec.upstream_path(request), [], body)

    async def read() -> list[bytes]:
        return [chunk async for chunk in reply.chunks()]

    return request, asyncio.run(read())


def run(dialect: str, how: str, streams: int) -> None:
    codec = get_dialect(dialect)
    request, chunks = stream(dialect)
    for _ in range(streams):
        decoder = codec.stream_watcher(request) if how == "watch" else codec.stream_decoder(request)
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.close()


def count(dialect: str, how: str, streams: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        subprocess.run(
            [*command, "-m", "bench.callgrind_watch", dialect, how, str(streams)],
            check=True,
            capture_output=True,
            env=env,
        )
        with open(out) as f:
            match = _TOTAL.search(f.read())
    if match is None:
        raise SystemExit(f"no summary in callgrind's output for {dialect} {how}")
    return int(match.group(1))


def per_event(dialect: str, how: str, streams: int) -> float:
    events = len(stream(dialect)[1])
    return (count(dialect, how, 2 * streams) - count(dialect, how, streams)) / (streams * events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind_watch", description=__doc__)
    parser.add_argument("--measure", action="store_true", help="count K and 2K streams, print per event")
    parser.add_argument("-k", type=int, default=10, help="streams of the smaller run (with --measure)")
    parser.add_argument("args", nargs="*", help="dialect names (with --measure), else: dialect full|watch K")
    options = parser.parse_args(argv)
    if not options.measure:
        dialect, how, streams = options.args
        run(dialect, how, int(streams))
        return 0
    for dialect in options.args or DIALECTS:
        full, watch = per_event(dialect, "full", options.k), per_event(dialect, "watch", options.k)
        print(f"{dialect:18} full {full:>9,.0f}  watch {watch:>9,.0f}  ({watch / full:.2f}×)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
