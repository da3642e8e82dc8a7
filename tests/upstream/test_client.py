"""The network transport of ``upstream.client``: the headers it sends, its first-byte deadline, how it reads bodies.

A recording upstream (uvicorn in a thread, ``tests.servers``) answers; the transport runs in the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from llm_proxy.config import ServerConfig, Timeouts
from llm_proxy.errors import StreamInterrupted, UpstreamUnavailable
from llm_proxy.upstream.client import AiohttpTransport
from tests.servers import Recorded, RecordingUpstream, Reply, ServerThread, running_upstream


@pytest.fixture
def upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    fake = RecordingUpstream()
    with running_upstream(fake) as server:
        yield fake, server


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    client = AiohttpTransport(ServerConfig())
    yield client
    await client.close()


async def test_the_upstream_gets_the_planned_headers_and_none_of_aiohttps_own(
    upstream: tuple[RecordingUpstream, ServerThread], transport: AiohttpTransport
) -> None:
    """No ``Accept``, ``Accept-Encoding``, ``User-Agent`` or default ``Content-Type`` is added: in proxy mode the
    upstream sees the client's headers (an ``Accept-Encoding`` of aiohttp's would change what comes back)."""
    fake, server = upstream
    planned = [("x-custom", "1"), ("authorization", "Bearer k")]
    response = await transport.send("POST", f"{server.url}/v1/chat/completions", planned, b'{"model":"m"}')
    assert await response.read(1 << 20) == b'{"ok":true}'
    response.close()
    sent = fake.requests[0]
    names = sorted(name.lower() for name, _ in sent.raw_headers)
    assert names == ["authorization", "content-length", "host", "x-custom"]
    assert sent.body == b'{"model":"m"}'

    planned.append(("content-type", "application/json"))
    response = await transport.send("POST", f"{server.url}/v1/chat/completions", planned, b"{}")
    response.close()
    assert fake.requests[1].headers["content-type"] == "application/json"


async def test_an_upstream_silent_past_the_first_byte_deadline_is_a_timeout(
    upstream: tuple[RecordingUpstream, ServerThread], transport: AiohttpTransport
) -> None:
    """A 504-kind failure, and the task's cancellation taken back: the request's handler goes on (to its error
    answer, or to the next attempt) as if it had never been cancelled."""
    fake, server = upstream

    async def silent(request: Recorded, reply: Reply) -> None:
        await reply.wait_disconnect(10)

    fake.handler = silent
    with pytest.raises(UpstreamUnavailable) as failure:
        await transport.send("POST", f"{server.url}/v1/x", [], b"{}", Timeouts(first_byte=0.2))
    assert failure.value.error.status == 504
    assert "did not answer in time" in failure.value.error.message
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # still running: no cancellation is left pending


async def test_a_cancel_from_elsewhere_is_not_taken_for_a_timeout(
    upstream: tuple[RecordingUpstream, ServerThread], transport: AiohttpTransport
) -> None:
    """A client that goes away cancels the request's task while it waits for the upstream: that cancellation
    propagates, whatever the first-byte deadline."""
    fake, server = upstream
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def silent(request: Recorded, reply: Reply) -> None:
        loop.call_soon_threadsafe(arrived.set)
        await reply.wait_disconnect(10)

    fake.handler = silent
    call = asyncio.ensure_future(transport.send("POST", f"{server.url}/v1/x", [], b"{}", Timeouts(first_byte=30)))
    await arrived.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_body_arrives_chunk_by_chunk_and_a_cut_body_is_an_interruption(
    upstream: tuple[RecordingUpstream, ServerThread], transport: AiohttpTransport
) -> None:
    fake, server = upstream

    async def chunked(request: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        for n in range(3):
            await reply.chunk(b"data: %d\n\n" % n)
            await asyncio.sleep(0.01)
        if request.path == "/cut":
            return  # no final chunk: uvicorn closes the connection in the middle of the body
        await reply.chunk(b"", more=False)

    fake.handler = chunked
    response = await transport.send("POST", f"{server.url}/whole", [], b"{}")
    received = [chunk async for chunk in response.chunks()]
    response.close()
    assert b"".join(received) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"

    response = await transport.send("POST", f"{server.url}/cut", [], b"{}")
    with pytest.raises(StreamInterrupted) as failure:
        await response.read(1 << 20)
    response.close()
    assert not failure.value.timeout

    response = await transport.send("POST", f"{server.url}/whole", [], b"{}")
    with pytest.raises(StreamInterrupted, match="larger than 10 bytes"):
        await response.read(10)
    response.close()
