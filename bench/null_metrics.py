"""``python -m bench.null_metrics --config FILE``: llm-proxy as its CLI runs it, with its metrics recorded nowhere.

Metrics are always on in llm-proxy; a benchmark that asks what they cost needs a proxy without them. This one
is the CLI, every request path as shipped, but each ``ProxyApp``'s metrics are a stand-in that ignores every call
(``NullMetrics``). Used by ``bench.observed`` (its ``bare`` variant) and, in-process, by
``bench.callgrind_request`` (``proxy-bare``). Not for serving: ``/metrics`` answers nothing useful.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from llm_proxy.app import server


class NullMetrics:
    """Metrics that record nothing: what the request path costs without them."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _nothing


def _nothing(*args: object, **kwargs: object) -> None:
    return None


def without_metrics(app: server.ProxyApp) -> server.ProxyApp:
    """``app``, its metrics replaced by ``NullMetrics``."""
    app.metrics = NullMetrics()  # type: ignore[assignment]
    return app


def main() -> int:
    made = server.ProxyApp.__init__

    def init(self: server.ProxyApp, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        without_metrics(self)

    server.ProxyApp.__init__ = init  # type: ignore[method-assign]
    from llm_proxy.app.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
