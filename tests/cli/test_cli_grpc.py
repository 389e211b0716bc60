"""``tether call --protocol grpc`` against ``tether serve demo``: the same port speaks gRPC."""

from __future__ import annotations

import base64
import json

from .helpers import Certs, Run, ServeProcess


def test_grpc_unary_and_stream_on_the_demo_port(tether: Run, demo_server: ServeProcess) -> None:
    """The demo server answers gRPC calls on its tcp port (detected by the HTTP/2 preface)."""
    url = demo_server.address("tcp")
    unary = tether(
        "call",
        url,
        "tether.demo.Echo/Unary",
        "--protocol",
        "grpc",
        "--data",
        '{"data": "aGk=", "repeat": 2}',
        "--metadata",
        "x-user=ada",
    )
    assert unary.returncode == 0, unary.stderr
    assert json.loads(unary.stdout) == {
        "data": base64.b64encode(b"hihi").decode(),
        "metadata": {"x-user": "ada"},
    }
    stream = tether(
        "call",
        url,
        "tether.demo.Echo/ServerStream",
        "--protocol",
        "grpc",
        "--data",
        '{"data": "eA==", "repeat": 3}',
    )
    assert stream.returncode == 0, stream.stderr
    assert len(stream.stdout.splitlines()) == 3


def test_grpc_over_tls_on_the_demo_port(
    tether: Run, demo_server: ServeProcess, certs: Certs
) -> None:
    """Over tls:// the gRPC client offers ALPN h2 and the demo server accepts it."""
    result = tether(
        "call",
        demo_server.address("tls"),
        "tether.demo.Echo/Unary",
        "--protocol",
        "grpc",
        "--cacert",
        str(certs.ca),
        "--data",
        '{"data": "dGxz"}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == "dGxz"
