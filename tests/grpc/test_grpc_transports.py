"""gRPC between tether ends over every transport: memory, unix, TLS (tcp and unix)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest

from .conftest import TLSFiles
from .echo_impl import Probe, TetherEcho


@pytest.mark.parametrize("scheme", ["memory", "unix", "tls", "tls+unix", "tls+memory"])
async def test_every_transport_carries_grpc(
    scheme: str, tmp_path: Path, tls_files: TLSFiles
) -> None:
    """A unary and a bidi call over gRPC work on each transport; TLS negotiates h2."""
    url = {
        "memory": f"memory://grpc-{id(tmp_path)}",
        "unix": f"unix://{tmp_path / 'g.sock'}",
        "tls": "tls://127.0.0.1:0",
        "tls+unix": f"tls+unix://{tmp_path / 't.sock'}",
        "tls+memory": f"tls+memory://grpc-tls-{id(tmp_path)}",
    }[scheme]
    probe = Probe()
    alpn: list[object] = []

    class Recording(TetherEcho):
        async def Unary(self, request: EchoRequest, ctx: tether.ServerContext) -> object:
            alpn.append(ctx.extra("alpn_protocol"))
            return await super().Unary(request, ctx)

    server = tether.Server([tether.grpc.service_from_pb2(echo_pb2, "Echo", Recording(probe))])
    await server.start(url, tls=tether.TLSConfig(cert=tls_files.server, key=tls_files.server))
    tls = tether.TLSConfig(ca=tls_files.ca, server_name="localhost") if "tls" in scheme else None
    try:
        async with tether.Client(server.addresses[0], protocol="grpc", tls=tls) as client:
            stub = tether.grpc.stub(client, echo_pb2, "Echo")
            assert (await stub.Unary(EchoRequest(data=b"u"))).data == b"u"
            async with stub.BidiStream() as call:
                await call.send(EchoRequest(data=b"b"))
                assert (await call.recv()).data == b"b"
                await call.done_writing()
                assert await call.recv() is None
    finally:
        server.close()
        await server.wait_closed()
    assert alpn == (["h2"] if "tls" in scheme else [None])
