"""docs/examples/thrift_kitex.py runs and prints what docs/thrift.md says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "thrift_kitex.py"


def test_thrift_example_runs() -> None:
    """Every protocol answers; metainfo goes out (and comes back) only where headers exist;
    the biz error arrives typed."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "buffered hihi - {}",
        "framed hihi - {}",
        "ttheader hihi t-1 {'served_by': 'tether'}",
        "ttheader_framed hihi t-1 {'served_by': 'tether'}",
        "theader hihi t-1 {'served_by': 'tether'}",
        "biz error 1001 out of stock {'why': 'asked to'}",
    ]
