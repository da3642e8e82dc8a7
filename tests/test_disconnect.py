"""``app.disconnect``: a request's client is watched only from ``WATCH_AFTER`` seconds on; a disconnect then cancels
the request's task (once), and a request over by then never starts the watching task."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace
from typing import Any, cast

import pytest

from llm_proxy.app import disconnect
from llm_proxy.app.disconnect import WATCH_AFTER, DisconnectWatch
from llm_proxy.app.exchange import Message


class Client:
    """An ASGI ``receive`` after the body: answers ``http.disconnect`` once ``leave`` is called."""

    def __init__(self) -> None:
        self.calls = 0
        self.gone = asyncio.Event()

    def leave(self) -> None:
        self.gone.set()

    async def receive(self) -> Message:
        self.calls += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}


def _exchange(finished: bool = False) -> Any:
    return SimpleNamespace(finished=finished)


def test_a_request_over_before_watch_after_never_starts_the_task() -> None:
    async def run() -> tuple[int, int]:
        client = Client()
        before = len(asyncio.all_tasks())
        watch = DisconnectWatch(client.receive, _exchange())
        await asyncio.sleep(WATCH_AFTER / 10)  # a fast answer
        tasks = len(asyncio.all_tasks()) - before
        watch.stop()
        client.leave()
        await asyncio.sleep(WATCH_AFTER * 1.5)  # the timer was cancelled: nothing starts later
        assert not watch.disconnected
        return tasks, client.calls

    assert asyncio.run(run()) == (0, 0)


def test_a_client_leaving_a_longer_request_cancels_its_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER", 0.01)

    async def run() -> tuple[bool, int, float]:
        client = Client()
        loop = asyncio.get_running_loop()
        watch = DisconnectWatch(client.receive, _exchange())
        started = loop.time()
        loop.call_later(0.05, client.leave)
        try:
            await asyncio.sleep(5)  # the upstream call
        except asyncio.CancelledError:
            watch.taken_back()
        took = loop.time() - started
        watch.stop()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # taken back: the request goes on to log it
        await asyncio.sleep(0)
        return watch.disconnected, client.calls, took

    disconnected, calls, took = asyncio.run(run())
    assert disconnected and calls == 1 and 0.04 < took < 1.0


def test_a_client_that_left_early_is_noticed_when_watching_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER", 0.05)

    async def run() -> tuple[bool, float]:
        client = Client()
        client.leave()  # gone before the watch starts
        loop = asyncio.get_running_loop()
        watch = DisconnectWatch(client.receive, _exchange())
        started = loop.time()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
        took = loop.time() - started
        watch.taken_back()
        watch.stop()
        return watch.disconnected, took

    disconnected, took = asyncio.run(run())
    assert disconnected and 0.04 < took < 1.0


def test_a_disconnect_after_the_answer_was_finished_cancels_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER", 0.01)

    async def run() -> bool:
        client = Client()
        watch = DisconnectWatch(client.receive, _exchange(finished=True))
        client.leave()
        await asyncio.sleep(0.1)  # not cancelled: the answer was complete
        watch.stop()
        return watch.disconnected

    assert asyncio.run(run()) is False


class _Unfinished:
    finished = False


def test_a_stopped_watch_lets_go_of_receive_and_the_exchange_without_a_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once stopped, nothing of the request stays alive through the cancelled watching task: its traceback holds
    its frame, which holds the watch; a watch still holding the task made a cycle that kept ``receive`` (and with
    it the server's response objects: granian ends a streamed body only when they are freed) until a collection."""
    monkeypatch.setattr(disconnect, "WATCH_AFTER", 0.01)

    async def run() -> tuple[bool, bool]:
        client = Client()
        exchange = _Unfinished()  # an object a weak reference can follow
        watch = DisconnectWatch(client.receive, cast(Any, exchange))
        await asyncio.sleep(0.05)  # the watching task waits in receive()
        assert client.calls == 1
        receive_alive, exchange_alive = weakref.ref(client), weakref.ref(exchange)
        watch.stop()
        del client, exchange, watch
        for _ in range(3):  # the cancellation reaches the task, which ends
            await asyncio.sleep(0)
        return receive_alive() is not None, exchange_alive() is not None

    gc.disable()
    try:
        assert asyncio.run(run()) == (False, False)
    finally:
        gc.enable()
