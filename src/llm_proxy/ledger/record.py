"""One ledger row: what one request cost, in the shape the stores write and the readers (CLI, API, dashboard) read."""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "usage_records"
"""The table that holds the records (``schema.USAGE``, created by the migrations)."""


@dataclass(slots=True, kw_only=True)  # not frozen: a frozen init costs twice as much, once per request
class UsageRecord:
    """One request, as the ledger keeps it.

    Token counts are the answer's usage as the client was told it (0 when the upstream reported none);
    ``cost_usd`` is None when the backend model has no known price (never a guess).
    """

    time: float
    """Unix time (seconds) the request arrived."""
    request_id: str
    client: str
    """The client key's name, ``-`` without client keys."""
    prefix: str
    frontend_model: str
    backend: str
    """The name of the backend that answered (the last attempt's), ``-`` when none was reached."""
    backend_model: str
    frontend_dialect: str
    backend_dialect: str
    status: int
    duration: float
    """Seconds from arrival to the last byte sent to the client."""
    ttft: float | None
    """Seconds to the first generated token of a stream; None when not streamed or nothing was generated."""
    input_tokens: int = 0
    """Uncached input tokens."""
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    """Part of ``output_tokens`` (reported separately by the upstreams that do)."""
    cost_usd: float | None = None
