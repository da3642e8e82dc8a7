"""What both minimal proxies share: where a request goes and how it is rewritten (the job of proxy mode).

The minimal proxies (``bench.minimal_asgi``, ``bench.minimal_rsgi``) are the yardsticks of llm-proxy's
proxy mode: read the body, set the top-level ``model``, replace the API key, forward to the upstream through
one aiohttp ``ClientSession`` (keep-alive pool), stream the answer back chunk by chunk. Nothing else.

Upstreams are chosen by the first path segment: ``/slow/...`` and ``/mock/...`` go to those upstreams with the
segment removed, every other path to the default one. They are read from the environment, so that a granian
worker process (which imports the app by name) finds them too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson

ENV = "BENCH_MINIMAL"
"""``model=NAME key=KEY default=URL slow=URL mock=URL`` (space-separated)."""

DROP = frozenset({"host", "content-length", "authorization", "x-api-key", "connection", "keep-alive", "expect"})
"""Request headers not forwarded as they are (the key is replaced, the length recomputed)."""
DROP_REPLY = frozenset({"connection", "keep-alive", "transfer-encoding"})
"""Reply headers the server sets itself (a content-length is kept: the body is passed through undecoded)."""


@dataclass(frozen=True, slots=True)
class Settings:
    model: str
    key: str
    upstreams: dict[str, str]
    """Path prefix (``""``: the default) → base URL."""

    @classmethod
    def from_env(cls) -> Settings:
        fields = dict(item.split("=", 1) for item in os.environ[ENV].split())
        model, key = fields.pop("model"), fields.pop("key")
        return cls(model, key, {"" if k == "default" else f"/{k}": v for k, v in fields.items()})

    def to_env(self) -> str:
        ups = " ".join(f"{p.strip('/') or 'default'}={u}" for p, u in self.upstreams.items())
        return f"model={self.model} key={self.key} {ups}"

    def url(self, path: str, query: str) -> str:
        """The upstream URL of a request path."""
        first = path[: path.find("/", 1)] if path.count("/") > 1 else path
        base = self.upstreams.get(first)
        if base is None:
            base, rest = self.upstreams[""], path
        else:
            rest = path[len(first) :]
        return f"{base}{rest}?{query}" if query else base + rest

    def body(self, body: bytes) -> bytes:
        """The body with its top-level ``model`` replaced (unchanged when it is not a JSON object)."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(doc, dict) or "model" not in doc:
            return body
        doc["model"] = self.model
        return orjson.dumps(doc)

    def headers(self, incoming: list[tuple[str, str]]) -> dict[str, str]:
        out = {k: v for k, v in incoming if k.lower() not in DROP}
        out["authorization"] = f"Bearer {self.key}"
        return out


def session() -> aiohttp.ClientSession:
    """One client for every request: a bounded keep-alive pool, bodies passed through undecoded."""
    connector = aiohttp.TCPConnector(limit=2000, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


def reply_headers(response: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.items() if k.lower() not in DROP_REPLY]


def parse(prog: str, doc: str | None, argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings]:
    """The command line both minimal proxies take."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the default upstream")
    parser.add_argument("--slow", help="base URL for /slow/...")
    parser.add_argument("--mock", help="base URL for /mock/...")
    parser.add_argument("--model", default="fast-model", help="the model every request is rewritten to")
    parser.add_argument("--key", default="upstream-key", help="the upstream API key")
    options = parser.parse_args(argv)
    ups = {"": options.upstream, "/slow": options.slow, "/mock": options.mock}
    return options, Settings(options.model, options.key, {p: u for p, u in ups.items() if u})
