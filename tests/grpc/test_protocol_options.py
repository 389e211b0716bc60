"""Per-server and per-client gRPC options (``protocol_options``) on real connections:
each Server and Client keeps its own limits and identity, whatever the others in the
same process use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h2.errors
import h2.events
import h2.exceptions
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest
from tether.framing.grpc import GrpcOptions

from ..framing.grpc.h2_peer import h2_connection, lpm
from .echo_impl import Probe, TetherEcho


def _echo_server(**options: object) -> tether.Server:
    service = tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(Probe()))
    return tether.Server([service], **options)  # type: ignore[arg-type]


def _host_port(server: tether.Server) -> tuple[str, int]:
    host, port = server.addresses[0].removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


async def _ping(host_port: tuple[str, int], count: int) -> tuple[int, int | None]:
    """Open an HTTP/2 connection (h2), send ``count`` PINGs and nothing else; return the
    ACKs received and the error code of the server's GOAWAY (``None``: no GOAWAY), once
    every PING is acknowledged or the server has closed the connection."""
    conn = h2_connection(client=True)
    for index in range(count):
        conn.ping(index.to_bytes(8, "big"))
    reader, writer = await asyncio.open_connection(*host_port)
    acks = 0
    goaway: int | None = None
    try:
        writer.write(conn.data_to_send())
        while acks < count and goaway is None:
            data = await reader.read(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.PingAckReceived):
                    acks += 1
                elif isinstance(event, h2.events.ConnectionTerminated):
                    goaway = event.error_code
            writer.write(conn.data_to_send())
    finally:
        writer.close()
    return acks, goaway


async def test_two_servers_keep_their_own_flood_limits() -> None:
    """Two servers in one process, PING flood limits 5 and 50: six PINGs without progress
    get GOAWAY ENHANCE_YOUR_CALM from the first (after five ACKs), twenty are all
    answered by the second, and the strict server still serves real calls, over gRPC and
    over tether's native protocol."""
    strict = _echo_server(protocol_options={"grpc": GrpcOptions(ping_flood_limit=5)})
    lenient = _echo_server(protocol_options={"grpc": GrpcOptions(ping_flood_limit=50)})
    async with strict, lenient:
        await strict.start("tcp://127.0.0.1:0")
        await lenient.start("tcp://127.0.0.1:0")
        assert await _ping(_host_port(strict), 6) == (5, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        assert await _ping(_host_port(lenient), 20) == (20, None)
        for protocol in ("grpc", "tether"):  # the options touch only the grpc framing
            async with tether.Client(strict.addresses[0], protocol=protocol) as client:
                stub = tether.grpc.stub(client, echo_pb2, "Echo")
                assert (await stub.Unary(EchoRequest(data=b"a"))).data == b"a"


class H2Peer:
    """A gRPC server written with h2 (the reference HTTP/2 implementation) on loopback:
    it records every request's headers and GOAWAY error code, sends ``pings`` PINGs
    right after its SETTINGS, and answers each call with an empty OK reply."""

    def __init__(self, pings: int = 0) -> None:
        self.pings = pings
        self.requests: list[dict[str, str]] = []
        self.goaways: list[int] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        conn = h2_connection(client=False)
        for index in range(self.pings):
            conn.ping(index.to_bytes(8, "big"))
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    self._on_event(conn, event)
                writer.write(conn.data_to_send())
        except (h2.exceptions.ProtocolError, ConnectionError):
            pass
        finally:
            writer.close()

    def _on_event(self, conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.requests.append({str(k): str(v) for k, v in event.headers or []})
        elif isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            sid = event.stream_id
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
            conn.send_data(sid, lpm(b""))
            conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways.append(event.error_code)


@pytest.fixture
async def h2_peer() -> AsyncIterator[H2Peer]:
    peer = H2Peer()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.close()


async def test_each_client_sends_its_own_authority_and_user_agent(h2_peer: H2Peer) -> None:
    """Three clients of one server in one process: one with GrpcOptions naming an
    authority, a user agent and gzip, one whose ``authority=`` argument overrides its
    options, one with the defaults; the server sees each one's own headers."""
    options = GrpcOptions(authority="svc.example", user_agent="probe/1.0", compression="gzip")
    custom = tether.Client(h2_peer.url, protocol="grpc", protocol_options=options)
    argument = tether.Client(
        h2_peer.url, protocol="grpc", protocol_options=options, authority="arg.example"
    )
    default = tether.Client(h2_peer.url, protocol="grpc")
    async with custom, argument, default:
        for client in (custom, argument, default):
            assert await client.unary("/a.B/C", b"payload") == b""
    seen = [(r[":authority"], r["user-agent"], r.get("grpc-encoding")) for r in h2_peer.requests]
    host_port = h2_peer.url.removeprefix("tcp://")
    assert seen == [
        ("svc.example", "probe/1.0", "gzip"),
        ("arg.example", "probe/1.0", "gzip"),
        (host_port, "tether-grpc/1", None),
    ]


async def test_client_flood_limit_is_per_client() -> None:
    """A server that greets with four PINGs trips a client whose PING flood limit is
    three (its call fails with UNAVAILABLE naming the flood, the server gets GOAWAY
    ENHANCE_YOUR_CALM, no connection is kept), while a default client in the same
    process is served."""
    peer = H2Peer(pings=4)
    await peer.start()
    try:
        strict = tether.Client(
            peer.url, protocol="grpc", protocol_options=GrpcOptions(ping_flood_limit=3)
        )
        async with strict, tether.Client(peer.url, protocol="grpc") as default:
            with pytest.raises(tether.StatusError) as info:
                await strict.unary("/a.B/C", b"")
            assert info.value.status is tether.Status.UNAVAILABLE
            assert "PING flood" in info.value.message
            assert not strict._dispatchers
            assert await default.unary("/a.B/C", b"") == b""
    finally:
        await peer.close()
    assert h2.errors.ErrorCodes.ENHANCE_YOUR_CALM in peer.goaways


def test_options_are_checked_when_the_server_or_client_is_built() -> None:
    """Options of the wrong type, or for an unknown protocol, are a ConfigError from the
    constructor, before any connection."""
    with pytest.raises(tether.ConfigError, match="takes GrpcOptions options"):
        tether.Client("tcp://127.0.0.1:1", protocol="grpc", protocol_options=object())
    with pytest.raises(tether.ConfigError, match="takes no options"):
        tether.Client("tcp://127.0.0.1:1", protocol_options=GrpcOptions())
    with pytest.raises(tether.ConfigError, match="unknown protocol 'grcp'"):
        tether.Server(protocol_options={"grcp": GrpcOptions()})
