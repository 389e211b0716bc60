"""``tether call --protocol framed|buffered`` against thriftpy2's threaded server."""

from __future__ import annotations

import base64
import json

from tests.cli.helpers import run_tether


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_tether_call_reaches_a_thriftpy2_server(threaded_server: int, protocol: str) -> None:
    """Unary replies print as JSON; a oneway Notify is seen by the next Unary; a declared
    exception prints its status."""
    url = f"tcp://127.0.0.1:{threaded_server}"
    base = ("call", "--protocol", protocol, url)
    result = run_tether(
        *base, "Echo/Unary", "--data", json.dumps({"data": _b64(b"hi"), "repeat": 2})
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"data": _b64(b"hihi"), "metadata": {}}
    notify = run_tether(*base, "Echo/Notify", "--data", json.dumps({"data": _b64(b"psst")}))
    assert (notify.returncode, notify.stdout) == (0, ""), notify.stderr
    result = run_tether(*base, "Echo/Unary", "--data", "{}")
    assert json.loads(result.stdout)["metadata"] == {"notified": "psst"}
    failed = run_tether(*base, "Echo/Unary", "--data", '{"fail": "nope"}')
    assert (failed.returncode, failed.stderr.strip()) == (1, "INVALID_ARGUMENT: nope")
