"""``tether demo``: every method over every transport, in one process."""

from __future__ import annotations

from .helpers import Run


def test_demo_passes_every_row(tether: Run) -> None:
    """`tether demo` exits 0 and its table has an ok row per check per transport, in
    tether's protocol and in gRPC."""
    result = tether("demo", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.endswith(" ms")]
    transports = {row.split()[0] for row in rows}
    assert {
        "tcp",
        "unix",
        "tls",
        "memory",
        "quic",
        "kcp",
        "http-connect",
        "tls+http-connect",
        "shm",
    } <= transports
    assert {row.split()[1] for row in rows} == {"tether", "grpc"}
    assert len(rows) == len(transports) * 2 * 9
    assert all("✓" in row and "✗" not in row for row in rows), result.stdout
