"""The results table (ratio tether/ceiling and targets) and the JSON record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported figure and its target (if any)."""

    key: str
    label: str
    unit: str
    fmt: str
    higher_is_better: bool
    ratio_target: float | None = None  # tether/ceiling must reach this
    absolute_target: float | None = None  # tether's value must not exceed this


FIGURES = (
    Figure("sequential_calls_per_s", "sequential 64 B", "calls/s", ",.0f", True, ratio_target=0.85),
    Figure("sequential_p50_us", "sequential 64 B p50", "us", ".1f", False),
    Figure("sequential_p99_us", "sequential 64 B p99", "us", ".1f", False),
    Figure("sequential_client_cpu_us", "  client CPU per call", "us", ".1f", False),
    Figure("sequential_server_cpu_us", "  server CPU per call", "us", ".1f", False),
    Figure(
        "concurrent_calls_per_s", "100 concurrent 64 B", "calls/s", ",.0f", True, ratio_target=0.60
    ),
    Figure("concurrent_client_cpu_us", "  client CPU per call", "us", ".1f", False),
    Figure("concurrent_server_cpu_us", "  server CPU per call", "us", ".1f", False),
    Figure("bulk_mb_per_s", "1 MiB echo", "MB/s", ",.0f", True, ratio_target=0.70),
    Figure("server_peak_rss_mib", "server peak RSS", "MiB", ".1f", False, absolute_target=30.0),
    Figure("server_start_rss_mib", "server RSS at start", "MiB", ".1f", False),
)


#: gRPC figures where tether's gRPC must be at least 2x each other gRPC stack.
GRPC_FIGURES = (
    Figure("sequential_calls_per_s", "sequential 64 B", "calls/s", ",.0f", True, ratio_target=2.0),
    Figure("sequential_p50_us", "sequential 64 B p50", "us", ".1f", False),
    Figure(
        "concurrent_calls_per_s", "100 concurrent 64 B", "calls/s", ",.0f", True, ratio_target=2.0
    ),
    Figure("bulk_mb_per_s", "1 MiB echo", "MB/s", ",.0f", True, ratio_target=2.0),
    Figure("server_peak_rss_mib", "server peak RSS", "MiB", ".1f", False),
)
GRPC_SYSTEM = "tether-grpc"
GRPC_PEERS = ("grpcio", "grpclib")


def _cell(summary: dict[str, Any] | None, fmt: str) -> str:
    if summary is None:
        return "n/a"
    median = format(summary["median"], fmt)
    if len(summary["runs"]) < 2:
        return median
    return f"{median} [{format(summary['min'], fmt)}-{format(summary['max'], fmt)}]"


def verdicts(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per figure: the ratio tether/ceiling of the medians and whether its target is met."""
    out: dict[str, dict[str, Any]] = {}
    for fig in FIGURES:
        ceiling = figures.get("ceiling", {}).get(fig.key)
        ours = figures.get("tether", {}).get(fig.key)
        if ceiling is None or ours is None:
            continue
        ratio = ours["median"] / ceiling["median"] if ceiling["median"] else None
        entry: dict[str, Any] = {"ratio": ratio, "target": None, "met": None}
        if fig.ratio_target is not None and ratio is not None:
            entry["target"] = f"ratio >= {fig.ratio_target:.2f}"
            entry["met"] = ratio >= fig.ratio_target
        elif fig.absolute_target is not None:
            entry["target"] = f"tether <= {fig.absolute_target:g} {fig.unit}"
            entry["met"] = ours["median"] <= fig.absolute_target
        out[fig.key] = entry
    for peer in GRPC_PEERS:
        for fig in GRPC_FIGURES:
            theirs = figures.get(peer, {}).get(fig.key)
            ours = figures.get(GRPC_SYSTEM, {}).get(fig.key)
            if theirs is None or ours is None or fig.ratio_target is None:
                continue
            ratio = ours["median"] / theirs["median"] if theirs["median"] else None
            out[f"{GRPC_SYSTEM}/{peer}:{fig.key}"] = {
                "ratio": ratio,
                "target": f"ratio >= {fig.ratio_target:.2f}",
                "met": None if ratio is None else ratio >= fig.ratio_target,
            }
    return out


def grpc_table(record: dict[str, Any]) -> str:
    """tether's gRPC against grpcio and grpclib: medians and the 2x targets."""
    figures = record["figures"]
    peers = [p for p in GRPC_PEERS if p in figures]
    if GRPC_SYSTEM not in figures or not peers:
        return ""
    judged = record["verdicts"]
    header = ("gRPC figure", "unit", GRPC_SYSTEM, *peers, *(f"vs {p}" for p in peers))
    rows: list[tuple[str, ...]] = [header]
    for fig in GRPC_FIGURES:
        cells = [fig.label, fig.unit, _cell(figures[GRPC_SYSTEM].get(fig.key), fig.fmt)]
        cells += [_cell(figures[p].get(fig.key), fig.fmt) for p in peers]
        for peer in peers:
            entry = judged.get(f"{GRPC_SYSTEM}/{peer}:{fig.key}")
            if entry is None or entry["ratio"] is None:
                cells.append("-")
            else:
                cells.append(f"{entry['ratio']:.2f} {'met' if entry['met'] else 'NOT MET'}")
        rows.append(tuple(cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        "gRPC: the same echo over HTTP/2, raw bytes, one connection; target: tether-grpc >= 2x "
        "each peer (calls/s, MB/s)"
    )
    return "\n".join(lines)


def table(record: dict[str, Any]) -> str:
    """A plain-text table: median [min-max] per system, the ratio and the target."""
    figures = record["figures"]
    judged = record["verdicts"]
    header = ("figure", "unit", "ceiling (raw asyncio)", "tether", "tether/ceiling", "target", "")
    rows: list[tuple[str, ...]] = [header]
    for fig in FIGURES:
        entry = judged.get(fig.key, {"ratio": None, "target": None, "met": None})
        ratio = entry["ratio"]
        met = entry["met"]
        rows.append(
            (
                fig.label,
                fig.unit,
                _cell(figures.get("ceiling", {}).get(fig.key), fig.fmt),
                _cell(figures.get("tether", {}).get(fig.key), fig.fmt),
                "n/a" if ratio is None else f"{ratio:.2f}",
                entry["target"] or "-",
                "" if met is None else ("met" if met else "NOT MET"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < 2 or i >= 5 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    config = record["config"]
    machine = record["machine"]
    notes = [
        f"median [min-max] of {config['runs']} runs; client in the main process, each server in its own process"
        f"{' (client and servers pinned to separate CPUs)' if config.get('pin') else ''}; loopback TCP",
        f"sequential: {config['sequential_calls']:,} calls/run; concurrent: {config['concurrent_calls']:,} calls/run, "
        f"100 in flight on one connection; 1 MiB echo: {config['bulk_calls']:,} calls/run",
        "MB/s counts request + reply payload bytes (2 x 1 MiB per call), MB = 10^6 bytes; "
        f"RSS in MiB from {record['rss_method']}",
        f"machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs ({machine['cpus_usable']} usable), "
        f"Python {machine['python']}, {machine['loop']}",
    ]
    return "\n".join([*lines, "", *notes])


def write_json(record: dict[str, Any], out_dir: Path) -> Path:
    """Write ``record`` to ``out_dir/bench-<timestamp>.json`` and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
