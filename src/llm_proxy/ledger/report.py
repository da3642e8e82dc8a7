"""``llm-proxy usage``: the ledger's grouped totals as a table or JSON, read straight from the store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from llm_proxy.ledger.summary import TOTALS, Summary

_HEADINGS = {
    "requests": "REQUESTS",
    "input_tokens": "INPUT",
    "output_tokens": "OUTPUT",
    "cache_read_tokens": "CACHE READ",
    "cache_write_tokens": "CACHE WRITE",
    "reasoning_tokens": "REASONING",
    "cost_usd": "COST USD",
}


async def read(url: str, summary: Summary) -> list[dict[str, Any]]:
    from llm_proxy.ledger.store import LedgerStore  # SQLAlchemy: only for this command

    store = LedgerStore(url)
    await store.open()
    try:
        return await store.summary(summary)
    finally:
        await store.close()


def rows(url: str, summary: Summary) -> list[dict[str, Any]]:
    return asyncio.run(read(url, summary))


def as_json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()


def as_table(rows: list[dict[str, Any]], summary: Summary) -> str:
    """A text table: the group keys, then the totals (numbers right-aligned), then a total line."""
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(summary.since))
    keys = list(summary.by)
    header = [key.upper().replace("_", " ") for key in keys] + [_HEADINGS[t] for t in TOTALS]
    lines = [header]
    for row in rows:
        lines.append([str(row[key]) for key in keys] + [_cell(t, row[t]) for t in TOTALS])
    if len(rows) > 1 and keys:
        total = {t: sum(int(r[t]) for r in rows) for t in TOTALS[:-1]}
        costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
        cost = round(sum(costs), 6) if costs else None
        lines.append(["TOTAL"] + [""] * (len(keys) - 1) + [_cell(t, total.get(t, cost)) for t in TOTALS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = []
    for line in lines:
        cells = [c.ljust(widths[i]) if i < len(keys) else c.rjust(widths[i]) for i, c in enumerate(line)]
        text.append("  ".join(cells).rstrip())
    return f"usage since {since}\n" + "\n".join(text)


def _cell(name: str, value: Any) -> str:
    if name == "cost_usd":
        return "-" if value is None else f"{value:.6f}"
    return f"{value:,}"
