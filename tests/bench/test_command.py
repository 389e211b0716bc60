"""``tether bench``: which systems a selection plans, and a real (quick) run end to end."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tether.bench import add_arguments
from tether.bench._command import plan


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_plan_crosses_transports_with_protocols_and_skips_unregistered_ones() -> None:
    """Each transport x protocol is a system; unknown ones are skipped with the reason."""
    keys, skipped = plan(parse("--transports", "tcp", "nope", "--protocols", "tether", "zzz"))
    assert keys == ["ceiling", "tether/tcp/tether"]
    assert "not registered" in skipped["tether/nope/tether"]
    assert "not registered" in skipped["tether/tcp/zzz"]


def test_plan_adds_the_named_peers_or_all_of_them() -> None:
    """--peers with names adds those; --peers alone adds every peer; no flag adds none."""
    keys, _ = plan(parse("--transports", "tcp", "--protocols", "tether", "--peers", "grpcio"))
    assert keys[-1] == "peer/grpcio"
    keys, _ = plan(parse("--transports", "tcp", "--protocols", "tether", "--peers"))
    assert sum(k.startswith("peer/") for k in keys) == 6
    keys, _ = plan(parse("--transports", "tcp", "--protocols", "tether", "--no-ceiling"))
    assert keys == ["tether/tcp/tether"]


def test_quick_run_measures_tether_the_ceiling_and_peers_and_writes_json_and_plots(
    tmp_path: Path,
) -> None:
    """A quick run in separate processes records every figure, the scale scenario and PNGs."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.bench",
            "--quick",
            "--calls",
            "100",
            "--transports",
            "tcp",
            "--protocols",
            "tether",
            "--peers",
            "grpcio",
            "thriftpy2-aio-framed",
            "--scale",
            "50",
            "--scale-active",
            "10",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = tmp_path.glob("bench-*.json")
    record = json.loads(path.read_text())
    for key in ("ceiling", "tether/tcp/tether", "peer/grpcio", "peer/thriftpy2-aio-framed"):
        figures = record["figures"][key]
        for name in ("sequential_calls_per_s", "sequential_p99_us", "concurrent_calls_per_s"):
            assert figures[name]["median"] > 0, (key, name)
            assert figures[name]["min"] <= figures[name]["median"] <= figures[name]["max"]
        assert figures["bulk_mb_per_s"]["median"] > 0
        assert figures["server_peak_rss_mib"]["median"] > 0
    assert record["connections"]["peer/thriftpy2-aio-framed"] == "100"
    assert record["scale"]["connections"] == 50
    assert record["scale"]["active_calls_per_s"] > 0
    targets = {v["target"] for v in record["verdicts"]}
    assert "native sequential vs ceiling" in targets
    assert "50 idle connections <= 10 KB each" in targets
    assert {p.name for p in tmp_path.glob("*.png")} >= {"latency.png", "throughput.png", "bulk.png"}
    assert "tether/tcp/tether" in result.stdout
    assert "ratio seq/conc/1MiB" in result.stdout
