"""``tether serve demo``: addresses on stdout, usage errors, graceful drain on SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .helpers import TETHER, Run, start_serve


def test_sigterm_drains_in_flight_calls(tmp_path: Path) -> None:
    """On SIGTERM the server lets an in-flight call finish OK, then exits 0."""
    server = start_serve(
        "--listen", f"unix://{tmp_path / 'drain.sock'}", "--listen", "tcp://127.0.0.1:0"
    )
    requests = [{"data": "YQ=="}, {"data": "Yg==", "delayMs": 1500}]
    args = [arg for request in requests for arg in ("--data", json.dumps(request))]
    with subprocess.Popen(
        [*TETHER, "call", server.addresses[0], "tether.demo.Echo/BidiStream", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as call:
        assert call.stdout is not None
        first = call.stdout.readline()  # the call is now running on the server
        assert json.loads(first)["data"] == "YQ=="
        server.terminate()
        rest, err = call.communicate(timeout=15)
    assert call.returncode == 0, err
    assert [json.loads(line)["data"] for line in rest.splitlines()] == ["Yg=="]
    status, server_err = server.stop()
    assert status == 0, server_err
    assert "draining" in server_err


def test_prints_every_address_with_real_ports(tmp_path: Path) -> None:
    """Each --listen URL is printed once on stdout, port 0 replaced by the bound port."""
    sock = tmp_path / "a.sock"
    server = start_serve("--listen", "tcp://127.0.0.1:0", "--listen", f"unix://{sock}")
    try:
        tcp, unix = server.addresses
        assert tcp.startswith("tcp://127.0.0.1:")
        assert int(tcp.rsplit(":", 1)[1]) > 0
        assert unix == f"unix://{sock}"
    finally:
        status, err = server.stop()
    assert status == 0, err


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "--listen"),
        (("--listen", "tls://127.0.0.1:0"), "need --cert"),
        (("--listen", "bogus://x"), "unknown transport scheme"),
        (("--listen", "tcp://127.0.0.1:0", "--cacert", "/nonexistent/ca.pem"), "no such file"),
        (("--listen", "tcp://127.0.0.1:0", "--grace", "-1"), "must not be negative"),
    ],
    ids=["no-listen", "tls-without-cert", "unknown-scheme", "missing-file", "negative-grace"],
)
def test_bad_usage_exits_2(tether: Run, args: tuple[str, ...], complaint: str) -> None:
    """Bad serve options are reported on stderr with exit status 2."""
    result = tether("serve", "demo", *args)
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr
