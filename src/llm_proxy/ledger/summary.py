"""What a usage report asks for: since when (``24h``, ``7d``, a date) and grouped by what (client, model, ...).

Pure parsing and the row shape shared by ``llm-proxy usage``, ``GET /api/usage`` and the store; no database here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

GROUPS = ("client", "model", "backend", "backend_model", "prefix", "day")
"""What rows can be grouped by (``model`` is the frontend model the client asked for; ``day`` is UTC)."""
TOTALS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
)
"""The columns every row carries after its group keys."""
DEFAULT_SINCE = "24h"
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ReportError(ValueError):
    """A ``since`` or ``by`` that cannot be read; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Summary:
    since: float
    """Unix time: records from then on."""
    by: tuple[str, ...]

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        """A result row in the documented shape: the group keys, then ``TOTALS`` (integers, cost rounded)."""
        row: dict[str, Any] = {key: values[key] for key in self.by}
        for name in TOTALS[:-1]:
            row[name] = int(values[name] or 0)
        cost = values["cost_usd"]
        row["cost_usd"] = None if cost is None else round(float(cost), 6)
        return row


def parse_since(text: str | None, now: float) -> float:
    """``30m``, ``24h``, ``7d``, ``2w`` before ``now``, or a date (``2026-11-01``, UTC midnight) or ISO time."""
    value = (text or DEFAULT_SINCE).strip()
    span = _SPAN.match(value)
    if span is not None:
        return now - float(span.group(1)) * _UNIT[span.group(2)]
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"since {value!r}: give a span (30m, 24h, 7d, 2w) or a date (YYYY-MM-DD)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def parse_by(text: str | None) -> tuple[str, ...]:
    """``client,model`` -> ``("client", "model")``; each one of ``GROUPS``, none twice."""
    if not text:
        return ()
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name not in GROUPS:
            raise ReportError(f"by {name!r}: group by any of {', '.join(GROUPS)}")
    if len(set(names)) != len(names):
        raise ReportError("by: a group is named twice")
    return names
