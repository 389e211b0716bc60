"""The bench report: ratios, targets and the table, from a synthetic record (no processes)."""

from __future__ import annotations

from typing import Any

from tether.bench._report import markdown, table, verdicts


def fig(*values: float) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "runs": list(values),
    }


def record(
    figures: dict[str, dict[str, Any]], scale: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "started": "2026-11-21T00:00:00+00:00",
        "systems": list(figures),
        "figures": figures,
        "connections": {"peer/thriftpy2-aio-framed": "100"},
        "failed": {"peer/grpclib": "connect: refused"},
        "skipped": {"tether/quic/tether": "transport 'quic' is not registered"},
        "scale": scale,
        "config": {"runs": 3, "sequential_calls": 10, "concurrent_calls": 20, "bulk_calls": 2},
        "machine": {"cpu_model": "cpu", "cpus_usable": 2, "python": "3.11", "loop": "uvloop"},
    }


FIGURES = {
    "ceiling": {
        "sequential_calls_per_s": fig(100, 100, 100),
        "concurrent_calls_per_s": fig(1000, 1000, 1000),
        "bulk_mb_per_s": fig(10, 10, 10),
    },
    "tether/tcp/tether": {
        "sequential_calls_per_s": fig(90, 80, 100),
        "concurrent_calls_per_s": fig(500, 500, 500),
        "bulk_mb_per_s": fig(8, 8, 8),
        "server_peak_rss_mib": fig(28.0),
    },
    "tether/tcp/grpc": {"sequential_calls_per_s": fig(50, 50, 50)},
    "peer/grpcio": {"sequential_calls_per_s": fig(20, 20, 20)},
}


def test_each_target_is_the_ratio_of_medians_against_its_reference() -> None:
    """Targets compare medians with the named reference and say whether the goal is met."""
    judged = {v["target"]: v for v in verdicts(FIGURES, None)}
    assert judged["native sequential vs ceiling"]["ratio"] == 0.9
    assert judged["native sequential vs ceiling"]["met"] is True
    assert judged["native 100-concurrent vs ceiling"]["ratio"] == 0.5
    assert judged["native 100-concurrent vs ceiling"]["met"] is False
    assert judged["grpc sequential vs grpcio"]["ratio"] == 2.5
    assert judged["grpc sequential vs grpcio"]["met"] is True
    assert judged["native server peak RSS <= 30 MB"]["met"] is True
    # Nothing is judged against a system that was not measured.
    assert "grpc sequential vs grpclib" not in judged
    assert not any("ttheader" in name for name in judged)


def test_the_rss_target_is_30_megabytes_not_30_mebibytes() -> None:
    """29 MiB (30.4 MB) misses the 30 MB target; 28.6 MiB (29.99 MB) meets it."""
    for mib, met in ((29.0, False), (28.6, True)):
        figures = {"tether/tcp/tether": {"server_peak_rss_mib": fig(mib)}}
        (verdict,) = verdicts(figures, None)
        assert verdict["met"] is met


def test_idle_connection_memory_is_judged_against_ten_kilobytes() -> None:
    """The scale scenario's bytes per connection meet the goal at or under 10 KB."""
    scale = {"connections": 10_000, "bytes_per_connection": 12_000.0}
    (verdict,) = [v for v in verdicts({}, scale) if v["figure"] == "bytes_per_connection"]
    assert verdict["met"] is False
    scale["bytes_per_connection"] = 6_500.0
    (verdict,) = [v for v in verdicts({}, scale) if v["figure"] == "bytes_per_connection"]
    assert verdict["met"] is True


def test_table_lists_systems_ratios_failures_skips_and_targets() -> None:
    """The table has a row per measured system with its ratio to the ceiling, then the rest."""
    scale = {
        "connections": 100,
        "bytes_per_connection": 6_500.0,
        "server_rss_before_mib": 20.0,
        "server_rss_idle_mib": 21.0,
        "active_connections": 10,
        "active_calls_per_s": 1234.0,
    }
    rec = record(FIGURES, scale)
    rec["verdicts"] = verdicts(FIGURES, scale)
    text = table(rec)
    row = next(line for line in text.splitlines() if line.startswith("tether/tcp/tether"))
    assert "0.90/0.50/0.80" in row
    assert "90 ±11%" in row  # median and half the min-max spread
    assert "peer/grpclib: connect: refused" in text
    assert "tether/quic/tether: transport 'quic' is not registered" in text
    assert "100 idle connections: 6.5 KB each" in text
    assert "NOT MET" in text


def test_markdown_table_has_a_row_per_system_and_the_targets() -> None:
    """The README table shows median [min-max], ratios to the ceiling, and each target."""
    rec = record(FIGURES)
    rec["verdicts"] = verdicts(FIGURES, None)
    text = markdown(rec)
    row = next(line for line in text.splitlines() if line.startswith("| `tether/tcp/tether`"))
    assert "90 [80-100]" in row
    assert "0.90 / 0.50 / 0.80" in row
    assert "| native 100-concurrent vs ceiling | 0.50x | ≥ 0.60x | **not met** |" in text
