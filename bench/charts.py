"""PNG charts of throughput, latency, streaming and memory per contender (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.contenders import Contender
from bench.results import Results
from bench.settings import Settings


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _grouped(
    path: Path,
    title: str,
    ylabel: str,
    groups: Sequence[str],
    series: dict[str, list[float]],
    *,
    log: bool = False,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + i * width - 0.4 + width / 2 for g in range(len(groups))]
        heights = [0.0 if math.isnan(v) else v for v in values]
        ax.bar(xs, heights, width, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _value(res: Results, cell: str, name: str, metric: str) -> float:
    found = res.median(cell, name, metric)
    return float("nan") if found is None else found


def draw(res: Results, settings: Settings, contenders: Sequence[Contender], out_dir: Path) -> list[Path]:
    """Write the charts into ``out_dir`` and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = {c.name: c.label for c in contenders}
    conc = [f"c={c}" for c in settings.concurrency]
    paths = [
        _grouped(
            out_dir / "bench-throughput.png", "Non-streaming passthrough throughput", "requests/s", conc,
            {labels[n]: [_value(res, f"s1/c{c}", n, "rps") for c in settings.concurrency] for n in labels},
        ),
        _grouped(
            out_dir / "bench-latency.png", "Non-streaming passthrough p50 latency (log scale)", "ms", conc,
            {labels[n]: [_value(res, f"s1/c{c}", n, "p50_ms") for c in settings.concurrency] for n in labels},
            log=True,
        ),
    ]  # fmt: skip
    cells = ["s2/chat", *(f"s3/{p}" for p in settings.pairs)]
    names = ["passthrough", *(p.replace("->", "→") for p in settings.pairs)]
    paths.append(
        _grouped(
            out_dir / "bench-streaming.png", f"Streaming throughput ({settings.stream_concurrency} concurrent)",
            "deltas/s", names, {labels[n]: [_value(res, cell, n, "deltas_s") for cell in cells] for n in labels},
        )
    )  # fmt: skip
    paths.append(
        _grouped(
            out_dir / "bench-memory.png", "Memory (RSS, log scale)", "MB",
            ["idle", f"peak, {settings.slow_streams} streams"],
            {labels[n]: [_value(res, "s5", n, "idle_rss_mb"), _value(res, "s4", n, "peak_rss_mb")] for n in labels},
            log=True,
        )
    )  # fmt: skip
    return paths
