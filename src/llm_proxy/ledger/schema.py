"""The ledger's table, as SQLAlchemy describes it (the migrations in ``migrations/`` create it)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table

from llm_proxy.ledger.record import TABLE

METADATA = MetaData()

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite numbers rows only with INTEGER PRIMARY KEY

USAGE = Table(
    TABLE,
    METADATA,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("client", String(64), nullable=False),
    Column("prefix", String(255), nullable=False),
    Column("frontend_model", String(255), nullable=False),
    Column("backend", String(255), nullable=False),
    Column("backend_model", String(255), nullable=False),
    Column("frontend_dialect", String(32), nullable=False),
    Column("backend_dialect", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("duration", Float, nullable=False),
    Column("ttft", Float, nullable=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=True),
    Index("ix_usage_records_time", "time"),
    Index("ix_usage_records_client_time", "client", "time"),
)
"""One row per ``UsageRecord`` (same field names), plus ``id``."""
