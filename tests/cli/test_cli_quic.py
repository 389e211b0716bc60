"""quic:// from the command line: ``tether serve demo`` and ``tether call`` speak it, and a
server process killed mid-call fails the client's pending call with UNAVAILABLE."""

from __future__ import annotations

import asyncio
import json

import pytest

import tether
from tether.demo._services import PROTO_SERVICE, demo_services
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from .conftest import Certs
from .helpers import Run, start_serve


def test_serve_and_call_over_quic(tether: Run, certs: Certs) -> None:
    """`tether serve demo --listen quic://... --cert` serves `tether call --cacert` clients."""
    server = start_serve("--listen", "quic://127.0.0.1:0", "--cert", str(certs.server))
    try:
        address = server.address("quic")
        result = tether(
            "call",
            address,
            "tether.demo.Echo/Unary",
            "--cacert",
            str(certs.ca),
            "--data",
            json.dumps({"data": "cXVpYw=="}),
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["data"] == "cXVpYw=="
    finally:
        status, err = server.stop()
    assert status == 0, err


def test_quic_listener_needs_a_certificate(tether: Run) -> None:
    """A quic:// listener without --cert is a usage error (exit 2), like tls://."""
    result = tether("serve", "demo", "--listen", "quic://127.0.0.1:0")
    assert result.returncode == 2
    assert "--cert" in result.stderr


async def test_killed_server_fails_the_pending_call(certs: Certs) -> None:
    """SIGKILL on the server mid-stream: the client's waiting recv() fails with UNAVAILABLE."""
    server = start_serve("--listen", "quic://127.0.0.1:0", "--cert", str(certs.server))
    try:
        # A short idle timeout means keepalive PINGs every second: they meet the dead port.
        url = server.address("quic") + "?idle_timeout=3"
        tls = tether.TLSConfig(ca=certs.ca)
        async with tether.Client(url, tls=tls, timeout=60) as client:
            stub = client.stub(next(s for s in demo_services() if s.name == PROTO_SERVICE))
            async with stub.BidiStream() as bidi:
                await bidi.send(EchoRequest(data=b"alive"))
                reply = await bidi.recv()
                assert isinstance(reply, EchoReply)
                assert reply.data == b"alive"
                server.process.kill()
                server.process.wait(timeout=15)
                with pytest.raises(tether.StatusError) as info:
                    async with asyncio.timeout(30):  # a guard against a hang, not a speed check
                        await bidi.recv()
                assert info.value.status is tether.Status.UNAVAILABLE
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.process.communicate(timeout=15)
