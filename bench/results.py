"""Measurements: one sample per (cell, contender, round), medians, and ratios taken round by round.

A *cell* is one table row group, e.g. ``s1/c64`` or ``s3/claude->openai-chat``. A contender that
cannot be measured in a cell gets a reason instead of samples, and the report prints "n/a".
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

Sample = dict[str, float]


@dataclass
class Results:
    samples: dict[str, dict[str, dict[int, Sample]]] = field(default_factory=dict)
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)

    def put(self, cell: str, contender: str, rnd: int, sample: Sample) -> None:
        self.samples.setdefault(cell, {}).setdefault(contender, {})[rnd] = sample

    def skip(self, cell: str, contender: str, reason: str) -> None:
        self.reasons.setdefault(cell, {}).setdefault(contender, reason)

    def reason(self, cell: str, contender: str) -> str | None:
        return self.reasons.get(cell, {}).get(contender)

    def values(self, cell: str, contender: str, metric: str) -> dict[int, float]:
        rounds = self.samples.get(cell, {}).get(contender, {})
        # a figure a round could not take is None (NaN before a save: JSON writes it as null)
        return {r: s[metric] for r, s in rounds.items() if s.get(metric) is not None}

    def median(self, cell: str, contender: str, metric: str) -> float | None:
        found = list(self.values(cell, contender, metric).values())
        return statistics.median(found) if found else None

    def ratio(
        self, cell: str, a: str, b: str, metric: str, cell_b: str | None = None, *, diff: bool = False
    ) -> float | None:
        """Median over rounds of a/b (or a-b with ``diff``), pairing the two measurements of each round."""
        va = self.values(cell, a, metric)
        vb = self.values(cell_b or cell, b, metric)
        pairs = [(va[r], vb[r]) for r in va if r in vb]
        if diff:
            return statistics.median(x - y for x, y in pairs) if pairs else None
        found = [x / y for x, y in pairs if y]
        return statistics.median(found) if found else None

    def best(self, cell: str, names: tuple[str, ...], metric: str = "rps") -> dict[int, str]:
        """Per round, which of ``names`` had the highest ``metric`` in ``cell`` (e.g. the faster minimal proxy)."""
        rounds: dict[int, str] = {}
        for name in names:
            for rnd, value in self.values(cell, name, metric).items():
                if rnd not in rounds or value > self.values(cell, rounds[rnd], metric)[rnd]:
                    rounds[rnd] = name
        return rounds

    def ratio_to(self, cell: str, a: str, refs: dict[int, str], metric: str) -> float | None:
        """Median over rounds of a / (that round's reference in ``refs``), both measured in ``cell``."""
        va = self.values(cell, a, metric)
        found = []
        for rnd, ref in refs.items():
            vb = self.values(cell, ref, metric).get(rnd)
            if rnd in va and vb:
                found.append(va[rnd] / vb)
        return statistics.median(found) if found else None

    def to_json(self) -> dict[str, Any]:
        return {"samples": self.samples, "reasons": self.reasons}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Results:
        samples = {
            cell: {name: {int(r): dict(sample) for r, sample in rounds.items()} for name, rounds in by_name.items()}
            for cell, by_name in doc["samples"].items()
        }
        return cls(samples=samples, reasons={cell: dict(v) for cell, v in doc["reasons"].items()})
