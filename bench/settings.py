"""How much load each mode drives: the full run, ``--quick`` (under two minutes) and ``--smoke`` (tests).

Every figure in the report is the median of ``runs`` rounds; each round measures every contender once,
so ratios can be taken pair by pair within a round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str
    runs: int
    duration: float
    """Seconds per plain-request load run (scenario 1)."""
    concurrency: tuple[int, ...]
    stream_events: int
    """Text deltas per streamed reply (scenarios 2 and 3)."""
    stream_duration: float
    """Seconds per streaming load run."""
    stream_concurrency: int
    """Concurrent streams for the throughput figure (TTFB is measured at concurrency 1)."""
    pairs: tuple[str, ...]
    """Translation pairs of scenario 3."""
    slow_streams: int
    slow_events: int
    slow_delay_ms: float
    response_bytes: int = 800
    """Reply text size: with the JSON envelope the non-streaming reply is about 1.1 KB. A multiple of the
    event counts, so that the mock splits it into exactly that many deltas."""
    startup_timeout: float = 60.0
    quiet_timeout: float = 15.0
    """Seconds a contender's launch may wait for the machine to be quiet first (``processes.wait_machine_quiet``)."""

    @property
    def deltas_per_stream(self) -> int:
        """Text deltas the mock really sends: it cuts the text into pieces of ceil(bytes / events)."""
        size = -(-self.response_bytes // self.stream_events)
        return -(-self.response_bytes // size)

    @property
    def slow_seconds(self) -> float:
        """The nominal length of one slow stream."""
        return self.slow_events * self.slow_delay_ms / 1000


ALL_PAIRS = ("claude->openai-chat", "openai-chat->claude", "openai-responses->openai-chat")

FULL = Settings(
    mode="full",
    runs=3,
    duration=5.0,
    concurrency=(1, 64, 256),
    stream_events=200,
    stream_duration=2.0,
    stream_concurrency=32,
    pairs=ALL_PAIRS,
    slow_streams=1000,
    slow_events=100,
    slow_delay_ms=50.0,
)

QUICK = Settings(
    mode="quick",
    runs=1,
    duration=1.5,
    concurrency=(1, 64, 256),
    stream_events=200,
    stream_duration=1.0,
    stream_concurrency=32,
    pairs=("claude->openai-chat",),
    slow_streams=1000,
    slow_events=40,
    slow_delay_ms=50.0,
)

SMOKE = Settings(
    mode="smoke",
    runs=1,
    duration=1.0,
    concurrency=(1, 8),
    stream_events=20,
    stream_duration=0.3,
    stream_concurrency=4,
    pairs=("claude->openai-chat",),
    slow_streams=20,
    slow_events=5,
    slow_delay_ms=20.0,
    startup_timeout=20.0,
    quiet_timeout=1.0,
)

PRESETS = {s.mode: s for s in (FULL, QUICK, SMOKE)}
