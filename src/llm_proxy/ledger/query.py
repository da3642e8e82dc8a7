"""The ledger's reads as SQLAlchemy statements: grouped totals and raw records (the budgets' seed, spend per
client, is plain SQL in ``prepare``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select

from llm_proxy.ledger.schema import USAGE
from llm_proxy.ledger.summary import Summary

_COLUMNS = {
    "client": USAGE.c.client,
    "model": USAGE.c.frontend_model,
    "backend": USAGE.c.backend,
    "backend_model": USAGE.c.backend_model,
    "prefix": USAGE.c.prefix,
}


def _day(database: str) -> ColumnElement[Any]:
    """The UTC date of ``time`` as ``YYYY-MM-DD``, in the database's own words."""
    if database == "postgresql":
        return func.to_char(func.timezone("UTC", func.to_timestamp(USAGE.c.time)), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", USAGE.c.time, literal_column("'unixepoch'"))


def summary_query(summary: Summary, database: str) -> Select[Any]:
    keys = [(_day(database) if name == "day" else _COLUMNS[name]).label(name) for name in summary.by]
    totals = [
        func.count().label("requests"),
        func.sum(USAGE.c.input_tokens).label("input_tokens"),
        func.sum(USAGE.c.output_tokens).label("output_tokens"),
        func.sum(USAGE.c.cache_read_tokens).label("cache_read_tokens"),
        func.sum(USAGE.c.cache_write_tokens).label("cache_write_tokens"),
        func.sum(USAGE.c.reasoning_tokens).label("reasoning_tokens"),
        func.sum(USAGE.c.cost_usd).label("cost_usd"),
    ]
    statement = select(*keys, *totals).where(USAGE.c.time >= summary.since)
    if keys:
        statement = statement.group_by(*keys).order_by(*keys)
    return statement


def records_query(since: float, limit: int) -> Select[Any]:
    """The newest ``limit`` records from ``since`` on, newest first."""
    return select(USAGE).where(USAGE.c.time >= since).order_by(USAGE.c.time.desc(), USAGE.c.id.desc()).limit(limit)
