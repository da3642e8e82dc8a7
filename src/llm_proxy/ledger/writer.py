"""Records go to the database off the request path: a bounded queue, one background task writing batches.

``put`` never waits: a record joins the queue, or, when the queue is full (the database slow or down for a
while), it is dropped and counted. The task writes up to ``BATCH`` records per transaction; a failed write
keeps them queued and is retried with a growing pause, so an outage costs only what overflows. One warning
names the outage, one line says when writes succeed again. ``close`` writes what is queued within a bounded
time (the shutdown grace period).

Once a record is queued the task waits ``LINGER`` (1 s) for more, so that a busy proxy writes a few large
transactions a second rather than one per request. The sink is opened by the task itself (``opener``: the
``prepare`` child migrates the database, then the driver connects), after the server is up; records of the first
moments wait in the queue. An opener that fails is retried like a write, its pause growing to ``OPEN_RETRY_MAX``
(each try starts a child process, which costs CPU).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from llm_proxy.ledger.record import UsageRecord

log = logging.getLogger("llm_proxy.ledger")

CAPACITY = 10_000
BATCH = 1_000
LINGER = 1.0
"""Seconds the writer waits for a batch to gather once a record is queued (unless BATCH are queued first):
each batch costs a few hand-overs between the event loop and the driver's thread, which a busy CPU makes slow."""
RETRY_FIRST, RETRY_MAX = 0.25, 4.0
"""Seconds between retries of a failed write: doubling from the first to the most."""
OPEN_RETRY_MAX = 16.0
"""The most seconds between tries to open the sink (each runs the ``prepare`` child: about a second of CPU)."""


class Sink(Protocol):
    async def write(self, records: list[UsageRecord]) -> None: ...


class LedgerWriter:
    """The queue and its writing task (see the module docstring)."""

    def __init__(
        self, opener: Callable[[], Awaitable[Sink]], *, capacity: int = CAPACITY, describe: str = "the ledger"
    ) -> None:
        self._opener = opener
        self._capacity = capacity
        self._full = min(BATCH, capacity)
        self._describe = describe
        self._queue: collections.deque[UsageRecord] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failing = False
        self.written = 0
        self.dropped = 0
        self.sink: Sink | None = None
        self.ready = asyncio.Event()
        """Set once the store is open (the schema migrated)."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger-writer")

    def put(self, record: UsageRecord) -> None:
        """Queue one record (never waits; drops and counts when the queue is full)."""
        if len(self._queue) >= self._capacity:
            if not self._failing:  # one warning per outage: a write failure may have said it already
                log.warning(
                    "usage ledger: queue full (%d records) writing to %s: dropping records until it drains",
                    *(self._capacity, self._describe),
                )
                self._failing = True
            self.dropped += 1
            return
        self._queue.append(record)
        queued = len(self._queue)
        if queued == 1 or queued >= self._full:  # the writer lingers for a batch, unless it is full
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def close(self, timeout: float) -> None:
        """Write what is queued, waiting at most ``timeout`` seconds; what is left then is counted as dropped."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                left = len(self._queue)
                self.dropped += left
                self._queue.clear()
                log.warning("usage ledger: %d record(s) not written within %.0f s of shutdown", left, timeout)
                await asyncio.gather(task, return_exceptions=True)
        closer = getattr(self.sink, "close", None)
        if closer is not None:
            await closer()

    async def _run(self) -> None:
        pause = RETRY_FIRST
        while self.sink is None:
            try:
                self.sink = await self._opener()
            except Exception as exc:  # an unreachable or refusing database: keep serving, keep trying
                self._outage(exc)
                if self._closing:
                    return self._give_up()
                await self._sleep(pause)
                pause = min(pause * 2, OPEN_RETRY_MAX)
        self.ready.set()
        pause = RETRY_FIRST
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self._full and not self._closing and pause == RETRY_FIRST:
                # Let a batch gather: a transaction per request would cost more than the rows themselves.
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), LINGER)
                except TimeoutError:
                    pass
            batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            try:
                await self.sink.write(batch)
            except Exception as exc:  # the database is down or slow: the records stay queued
                self._outage(exc)
                if self._closing:
                    return self._give_up()
                await self._sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
                continue
            for _ in batch:
                self._queue.popleft()
            self.written += len(batch)
            pause = RETRY_FIRST
            if self._failing:
                log.info("usage ledger writes resumed (%s); %d record(s) dropped so far", self._describe, self.dropped)
                self._failing = False

    def _outage(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("usage ledger: cannot write to %s (records queue, then drop): %s", self._describe, exc)
            self._failing = True

    def _give_up(self) -> None:
        left = len(self._queue)
        if left:
            self.dropped += left
            self._queue.clear()
            log.warning("usage ledger: %d record(s) not written at shutdown (%s unavailable)", left, self._describe)

    async def _sleep(self, seconds: float) -> None:
        """Pause before a retry; a shutdown cuts it short (so that ``close`` retries once at once)."""
        deadline = time.monotonic() + seconds
        while not self._closing and time.monotonic() < deadline:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), deadline - time.monotonic())
            except TimeoutError:
                return
