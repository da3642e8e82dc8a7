"""Noticing that a client went away: its request's task is cancelled, which closes the upstream connection.

ASGI says so by answering ``receive()`` with ``http.disconnect`` once the body is read, so something must be
waiting in ``receive()`` while the request runs. That is a task of its own, which costs about a tenth of a fast
request; most requests are answered within ``WATCH_AFTER`` seconds, so the task starts only when the request
reaches that age (a timer until then, a tenth of a task's cost). A client that left earlier is noticed then.
"""

from __future__ import annotations

import asyncio

from llm_proxy.app.exchange import Exchange, Receive

WATCH_AFTER = 0.1
"""Seconds into a request before a task starts waiting for its client's disconnect."""


class DisconnectWatch:
    """Watches one request's client from ``WATCH_AFTER`` seconds on; on a disconnect before the answer is finished,
    cancels the request's task and says so (``disconnected``). ``stop`` when the request is over."""

    __slots__ = ("_receive", "_exchange", "_task", "_timer", "_watcher", "disconnected")

    def __init__(self, receive: Receive, exchange: Exchange) -> None:
        self._receive = receive
        self._exchange = exchange
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self.disconnected = False
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)

    def _start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())  # ensure_future's checks cost more

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._exchange.finished and self._task is not None:
                    self.disconnected = True
                    self._task.cancel()
                return

    def taken_back(self) -> None:
        """The cancellation this watch caused was handled: the request's task goes on (to log and count it)."""
        if self._task is not None:
            self._task.uncancel()

    def stop(self) -> None:
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
            # Let go of the task: once cancelled, its exception's traceback holds its frame, which holds this
            # watch, which would hold the task, in a cycle that keeps ``receive`` and the exchange (the server's
            # response objects) until a garbage collection. granian ends a streamed body only when its transport
            # object is freed: through that cycle, a stream that outlived ``WATCH_AFTER`` never ended.
            self._watcher = None
