"""PNG plots of a benchmark record (matplotlib, headless): one chart per figure.

Bars are grouped by system: the ceiling in grey, tether's transports x protocols in blue
and the peers in orange, so each peer is drawn beside tether. Error bars span min-max.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHARTS = (
    ("sequential_calls_per_s", "Sequential 64 B calls", "calls/s", "latency"),
    ("concurrent_calls_per_s", "100 concurrent 64 B calls", "calls/s", "throughput"),
    ("bulk_mb_per_s", "1 MiB echo", "MB/s", "bulk"),
    ("sequential_p50_us", "Sequential 64 B call latency (p50)", "us", "latency-p50"),
)


def _color(key: str) -> str:
    if key == "ceiling":
        return "#888888"
    if key.startswith("peer/"):
        return "#e07b39"
    return "#3a6ea5"


def plot(record: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write one PNG per chart into ``out_dir``; returns their paths ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    figures: dict[str, dict[str, Any]] = record["figures"]
    keys = [k for k in record["systems"] if k in figures]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for figure, title, unit, name in CHARTS:
        present = [k for k in keys if figure in figures[k]]
        if not present:
            continue
        medians = [figures[k][figure]["median"] for k in present]
        low = [m - figures[k][figure]["min"] for k, m in zip(present, medians, strict=True)]
        high = [figures[k][figure]["max"] - m for k, m in zip(present, medians, strict=True)]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(present) + 2), 4.5))
        bars = ax.bar(
            range(len(present)),
            medians,
            yerr=[low, high],
            color=[_color(k) for k in present],
            capsize=3,
        )
        labels = [f"{m:,.0f}" if m >= 10 else f"{m:.1f}" for m in medians]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
        positive = [m for m in medians if m > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_yscale("log")  # the ceiling would flatten every other bar
        ax.set_xticks(range(len(present)))
        ax.set_xticklabels(present, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(unit)
        machine = record["machine"]
        ax.set_title(
            f"{title}\n{machine['cpu_model']}, {machine['cpus_usable']} CPUs, {machine['loop']}, "
            f"{record['started'][:10]}",
            fontsize=9,
        )
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
