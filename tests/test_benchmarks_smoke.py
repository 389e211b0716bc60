"""Smoke test of ``python -m benchmarks --quick``: it runs and records every figure.

No timing assertions: the figures depend on the machine; only their presence is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIGURES = (
    "sequential_calls_per_s",
    "sequential_p50_us",
    "sequential_p99_us",
    "concurrent_calls_per_s",
    "bulk_mb_per_s",
    "server_peak_rss_mib",
)
RATIO_TARGETS = ("sequential_calls_per_s", "concurrent_calls_per_s", "bulk_mb_per_s")


@pytest.mark.timeout(150)  # five systems, each with its own server process
def test_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--calls",
            "200",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("bench-*.json")
    record = json.loads(path.read_text())

    for system in ("ceiling", "tether", "tether-grpc", "grpcio", "grpclib"):
        figures = record["figures"][system]
        for name in FIGURES:
            summary = figures[name]
            assert summary["median"] > 0, (system, name)
            assert summary["min"] <= summary["median"] <= summary["max"], (system, name)
    for name in RATIO_TARGETS:
        verdict = record["verdicts"][name]
        assert verdict["ratio"] > 0
        for peer in ("grpcio", "grpclib"):
            assert record["verdicts"][f"tether-grpc/{peer}:{name}"]["ratio"] > 0
        assert isinstance(verdict["met"], bool)
    assert isinstance(record["verdicts"]["server_peak_rss_mib"]["met"], bool)
    machine = record["machine"]
    for key in ("cpu_model", "cpu_count", "python", "loop"):
        assert machine[key]
    assert "tether/ceiling" in result.stdout
