"""``tether serve demo`` and ``tether call`` over kcp:// and tls+kcp://."""

from __future__ import annotations

import base64
import json

from .helpers import Certs, Run, start_serve

UNARY = "tether.demo.Echo/Unary"


def test_serve_and_call_over_kcp(tether: Run, certs: Certs) -> None:
    """A served kcp:// and tls+kcp:// address each answer a unary call; SIGTERM exits 0."""
    server = start_serve(
        "--listen", "kcp://127.0.0.1:0", "--listen", "tls+kcp://127.0.0.1:0", "--cert", certs.server
    )
    try:
        plain = tether("call", server.address("kcp"), UNARY, "--data", '{"data": "a2NwIQ=="}')
        assert plain.returncode == 0, plain.stderr
        assert base64.b64decode(json.loads(plain.stdout)["data"]) == b"kcp!"
        secure = tether(
            "call",
            server.address("tls+kcp"),
            UNARY,
            "--data",
            '{"data": "eA=="}',
            "--cacert",
            certs.ca,
        )
        assert secure.returncode == 0, secure.stderr
        assert json.loads(secure.stdout)["data"] == "eA=="
    finally:
        status, err = server.stop()
    assert status == 0, err
