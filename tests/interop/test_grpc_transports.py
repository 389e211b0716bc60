"""gRPC with grpcio over TLS (ALPN h2) and unix sockets, concurrency limits, keepalive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from ..grpc.conftest import TLSFiles
from ..grpc.echo_impl import Probe, TetherEcho
from .grpc_peers import GrpcioDriver, serve_grpcio

pytestmark = pytest.mark.interop

UNARY = "/tether.demo.Echo/Unary"


def _tether_server(probe: Probe, **options: object) -> tether.Server:
    return tether.Server(
        [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(probe))],
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def tls_server(tls_files: TLSFiles) -> AsyncIterator[str]:
    """A tether server on tls:// with no ALPN configured (it accepts h2 by default)."""
    server = _tether_server(Probe())
    await server.start(
        "tls://127.0.0.1:0", tls=tether.TLSConfig(cert=tls_files.server, key=tls_files.server)
    )
    try:
        yield server.addresses[0]
    finally:
        server.close()
        await server.wait_closed()


async def test_grpcio_client_over_tls_negotiates_h2(tls_server: str, tls_files: TLSFiles) -> None:
    """grpcio insists on ALPN h2 over TLS; a tether TLS server offers it by default."""
    port = tls_server.rsplit(":", 1)[1]
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_files.ca.read_bytes())
    async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
        unary = channel.unary_unary(
            UNARY,
            request_serializer=EchoRequest.SerializeToString,
            response_deserializer=EchoReply.FromString,
        )
        reply = await unary(EchoRequest(data=b"tls"))
    assert reply.data == b"tls"


async def test_tether_client_over_tls_to_grpcio(tls_files: TLSFiles) -> None:
    """tether offers ALPN h2 (without it grpcio refuses the TLS connection)."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "tether.demo.Echo",
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(
                        _echo_unary,
                        request_deserializer=EchoRequest.FromString,
                        response_serializer=EchoReply.SerializeToString,
                    )
                },
            ),
        )
    )
    pem = tls_files.server.read_bytes()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(pem, pem)]))
    await server.start()
    try:
        tls = tether.TLSConfig(ca=tls_files.ca, server_name="localhost")
        async with tether.Client(f"tls://127.0.0.1:{port}", protocol="grpc", tls=tls) as client:
            stub = tether.grpc.stub(client, echo_pb2, "Echo")
            reply = await stub.Unary(EchoRequest(data=b"x"))
        assert reply.data == b"x"
    finally:
        await server.stop(None)


async def _echo_unary(request: EchoRequest, context: grpc.aio.ServicerContext) -> EchoReply:
    return EchoReply(data=request.data)


async def test_grpcio_client_over_a_unix_socket(tmp_path: Path) -> None:
    """grpcio's unix: targets reach a tether server on unix://."""
    path = tmp_path / "grpc.sock"
    server = _tether_server(Probe())
    await server.start(f"unix://{path}")
    try:
        driver = GrpcioDriver(f"unix:{path}")
        try:
            outcome = await driver.server_stream(EchoRequest(data=b"u", repeat=3))
        finally:
            await driver.close()
    finally:
        server.close()
        await server.wait_closed()
    assert [r.data for r in outcome.replies] == [b"u"] * 3


async def test_grpcio_client_waits_for_a_tether_stream_limit() -> None:
    """With max_concurrent_streams=8 on the tether server, 100 grpcio calls all succeed."""
    probe = Probe()
    server = _tether_server(probe, codec_config=tether.CodecConfig(max_concurrent_streams=8))
    await server.start("tcp://127.0.0.1:0")
    driver = GrpcioDriver(server.addresses[0].removeprefix("tcp://"))
    try:
        outcomes = await asyncio.gather(
            *(driver.unary(EchoRequest(data=bytes([i]), delay_ms=5)) for i in range(100))
        )
    finally:
        await driver.close()
        server.close()
        await server.wait_closed()
    assert [o.replies[0].data for o in outcomes] == [bytes([i]) for i in range(100)]


async def test_tether_client_waits_for_a_grpcio_stream_limit() -> None:
    """A grpcio server allowing 8 streams gets 100 concurrent tether calls over one
    connection: the client waits for free slots, and sends again the calls grpcio
    refuses (REFUSED_STREAM) while it is still releasing finished streams."""
    probe = Probe()
    async with (
        serve_grpcio(probe, options=[("grpc.max_concurrent_streams", 8)]) as server,
        tether.Client(f"tcp://{server.address}", protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        replies = await asyncio.gather(
            *(
                stub.Unary(EchoRequest(data=bytes([i]), delay_ms=5), timeout=60.0)
                for i in range(100)
            )
        )
        assert len(client._dispatchers) == 1
    assert [r.data for r in replies] == [bytes([i]) for i in range(100)]


async def test_tether_server_streams_wait_for_a_grpcio_stream_limit() -> None:
    """The same with 100 concurrent server-streaming calls: those grpcio refuses before
    any response are sent again (gRPC's transparent retry), and each call gets every
    reply."""
    probe = Probe()
    async with (
        serve_grpcio(probe, options=[("grpc.max_concurrent_streams", 8)]) as server,
        tether.Client(f"tcp://{server.address}", protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")

        async def stream(i: int) -> list[bytes]:
            request = EchoRequest(data=bytes([i]), repeat=2, delay_ms=5)
            return [r.data async for r in stub.ServerStream(request, timeout=60.0)]

        replies = await asyncio.gather(*(stream(i) for i in range(100)))
        assert len(client._dispatchers) == 1
    assert replies == [[bytes([i])] * 2 for i in range(100)]


PERMISSIVE_PINGS = [
    ("grpc.http2.min_ping_interval_without_data_ms", 1),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
]


@pytest.mark.parametrize("permissive", [True, False], ids=["permissive", "default-policy"])
async def test_keepalive_against_grpcio_ping_policy(permissive: bool) -> None:
    """10 ms keepalive PINGs during a 0.5 s call: a grpcio server configured to allow them
    answers every one; a grpcio server with its default policy ends the connection with
    GOAWAY too_many_pings (why tether's default is one PING per 5 minutes)."""
    probe = Probe()
    options = PERMISSIVE_PINGS if permissive else []
    async with serve_grpcio(probe, options=options) as server:
        keepalive = tether.KeepaliveConfig(interval=0.01, timeout=5.0)
        async with tether.Client(
            f"tcp://{server.address}", protocol="grpc", keepalive=keepalive
        ) as client:
            stub = tether.grpc.stub(client, echo_pb2, "Echo")
            if permissive:
                reply = await stub.Unary(EchoRequest(data=b"k", delay_ms=500))
                assert reply.data == b"k"
                assert len(client._dispatchers) == 1
            else:
                with pytest.raises(tether.StatusError) as info:
                    await stub.Unary(EchoRequest(data=b"k", delay_ms=500))
                assert info.value.status is tether.Status.UNAVAILABLE
                assert "too many pings" in info.value.message.lower()
                # A new call gets a new connection.
                assert (await stub.Unary(EchoRequest(data=b"again"))).data == b"again"


async def test_raw_call_to_grpcio_by_method_path() -> None:
    """Raw bytes by ``/pkg.Service/Method`` reach a grpcio server; the reply is raw too."""
    async with (
        serve_grpcio(Probe()) as server,
        tether.Client(f"tcp://{server.address}", protocol="grpc") as client,
    ):
        raw = await client.unary(
            "/tether.demo.Echo/Unary", EchoRequest(data=b"raw", repeat=2).SerializeToString()
        )
    assert EchoReply.FromString(raw).data == b"rawraw"
