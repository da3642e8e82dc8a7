"""The INSERT of ledger records and the row of values it takes, shared by the SQLite and PostgreSQL sinks.

One statement for every database, generated from ``UsageRecord``'s fields (the table's columns but ``id``:
``schema.USAGE``, kept by the migrations, is the source of the schema; a test checks that the two agree); only
the placeholder style differs between the drivers. No SQLAlchemy here: this runs in the serving process.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Literal

from llm_proxy.ledger.record import TABLE, UsageRecord

COLUMNS = tuple(field.name for field in dataclasses.fields(UsageRecord) if field.name != "cost_usd")
FIELDS = (*COLUMNS, "cost_usd")
"""The columns the INSERT names, in the order of ``row``'s values (``cost_usd`` last: it may be priced there)."""

Style = Literal["qmark", "numeric_dollar"]
"""``?`` (sqlite3) or ``$1`` (asyncpg)."""


def insert_sql(style: Style) -> str:
    """The INSERT of one record in a driver's positional parameter style."""
    if style == "qmark":
        marks = ["?"] * len(FIELDS)
    else:
        marks = [f"${i}" for i in range(1, len(FIELDS) + 1)]
    return f"INSERT INTO {TABLE} ({', '.join(FIELDS)}) VALUES ({', '.join(marks)})"


_VALUES = operator.attrgetter(*COLUMNS)


def row(record: UsageRecord, cost: float | None) -> tuple[Any, ...]:
    """The INSERT's values for ``record``, with ``cost`` as its ``cost_usd``."""
    return (*_VALUES(record), cost)
