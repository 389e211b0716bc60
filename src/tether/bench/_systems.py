"""The systems a benchmark measures: their servers, their clients and when they are available.

A system key is ``ceiling``, ``tether/<transport>/<protocol>`` or ``peer/<name>``. Every
system serves the same echo (the request bytes come back unchanged) and every client
calls it with the same payloads:

* ``ceiling``: a raw asyncio length-prefixed echo (:mod:`._ceiling`), the upper bound.
* ``tether/...``: a :class:`tether.Server` on one transport; protocols ``tether`` and
  ``grpc`` call a raw-bytes method, the Thrift protocols call ``binary echo(1: binary)``
  through :mod:`tether.thrift` (the same IDL the Thrift peers serve).
* ``peer/grpcio``, ``peer/grpclib``: the gRPC peers with pass-through (bytes) serialisers.
* ``peer/thriftpy2-{aio,threaded}-{framed,buffered}``: thriftpy2's asyncio server and its
  threaded server, always driven by thriftpy2's asyncio client (the same event loop for
  every system). thriftpy2 cannot multiplex, so its 100 concurrent calls use 100
  connections. Its default 3 s idle/read timeouts are turned off (``None``): the harness
  pauses between runs, which would otherwise drop idle connections.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import io
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._handle import ServerHandle

if TYPE_CHECKING:
    from pathlib import Path

HOST = "127.0.0.1"
RAW_SERVICE = "bench.Echo"
RAW_METHOD = f"{RAW_SERVICE}/Echo"
THRIFT_IDL = "namespace py bench\n\nservice BenchEcho {\n    binary echo(1: binary data)\n}\n"

#: Protocols that carry the Thrift echo (everything else calls the raw-bytes method).
THRIFT_PROTOCOLS = frozenset(
    {"buffered", "framed", "ttheader", "ttheader_framed", "theader", "thrift"}
)
#: Transports measured by default, in table order (when registered).
TRANSPORTS = ("tcp", "unix", "tls", "http-connect", "quic", "kcp", "shm")
#: Protocols measured by default, in table order (when registered).
PROTOCOLS = ("tether", "framed", "ttheader", "ttheader_framed", "buffered", "grpc")
PEERS = (
    "grpcio",
    "grpclib",
    "thriftpy2-aio-framed",
    "thriftpy2-aio-buffered",
    "thriftpy2-threaded-framed",
    "thriftpy2-threaded-buffered",
)
#: Transports whose URL is a filesystem path rather than host:port.
PATH_TRANSPORTS = frozenset({"unix", "shm"})
#: Transports that need the benchmark's certificates.
TLS_TRANSPORTS = frozenset({"tls", "quic"})

Call = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Certs:
    """The benchmark's self-signed CA and server certificate (PEM files)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: str) -> Certs:
        """The files :func:`make_certs` wrote into ``directory``."""
        from pathlib import Path

        root = Path(directory)
        return cls(root / "ca.pem", root / "server.pem", root / "server.key")


def make_certs(directory: Path) -> Certs:
    """Write a fresh CA and server certificate for 127.0.0.1 into ``directory``."""
    from ..cli._certs import write_self_signed

    files = write_self_signed(directory)
    return Certs(files.ca, files.cert, files.key)


# -- availability -------------------------------------------------------------------


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def peer_missing(name: str) -> str | None:
    """Why the peer cannot run here (``None``: it can)."""
    module = {"grpcio": "grpc", "grpclib": "grpclib"}.get(name, "thriftpy2")
    if not _has(module):
        return f"{module} is not installed (pip install 'tether[bench]')"
    return None


def tether_missing(transport: str, protocol: str) -> str | None:
    """Why ``tether/<transport>/<protocol>`` cannot run here (``None``: it can)."""
    from ..framing import get_framing
    from ..transport import registered_schemes

    if transport not in registered_schemes():
        return f"transport {transport!r} is not registered"
    try:
        get_framing(protocol)
    except Exception:
        return f"protocol {protocol!r} is not registered"
    return None


def system_key(transport: str, protocol: str) -> str:
    return f"tether/{transport}/{protocol}"


# -- servers --------------------------------------------------------------------------


def _thrift_module() -> Any:
    import thriftpy2

    return thriftpy2.load_fp(io.StringIO(THRIFT_IDL), module_name="bench_thrift")


class _ThriftEcho:
    async def echo(self, data: bytes) -> bytes:
        return data


class _SyncThriftEcho:
    def echo(self, data: bytes) -> bytes:
        return data


def _tether_services(protocol: str) -> list[Any]:
    import tether

    if protocol in THRIFT_PROTOCOLS:
        from ..thrift import thrift_service

        return [thrift_service(_thrift_module().BenchEcho, _ThriftEcho())]
    service = tether.Service(RAW_SERVICE)

    # The request as a read-only view of the frame it arrived in, returned as the reply
    # (RawViewCodec): no copy of a large payload out of the receive buffer or the shm
    # ring, the same handler for every transport (see docs/benchmarks.md).
    @service.unary
    async def Echo(request: memoryview) -> memoryview:
        return request

    return [service]


def _listen_url(transport: str, scratch: str) -> str:
    if transport in PATH_TRANSPORTS:
        return f"{transport}://{os.path.join(scratch, f'bench-{transport}.sock')}"
    return f"{transport}://{HOST}:0"


async def start_tether(transport: str, protocol: str, scratch: str, cert_dir: str) -> ServerHandle:
    """Serve the echo with a :class:`tether.Server` (its certificates from ``cert_dir``)."""
    import tether

    server = tether.Server(_tether_services(protocol))
    tls = None
    if transport in TLS_TRANSPORTS:
        certs = Certs.in_directory(cert_dir)
        tls = tether.TLSConfig(cert=certs.cert, key=certs.key)
    await server.start(_listen_url(transport, scratch), tls=tls)

    async def close() -> None:
        server.close()
        await server.wait_closed()

    return ServerHandle(server.addresses[0], close)


async def start_peer(name: str) -> ServerHandle:
    if name == "grpcio":
        return await _start_grpcio()
    if name == "grpclib":
        return await _start_grpclib()
    _, kind, framing = name.split("-")
    return await _start_thriftpy2(kind, framing)


async def _start_grpcio() -> ServerHandle:
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        RAW_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()

    async def close() -> None:
        await server.stop(None)

    return ServerHandle(f"{HOST}:{port}", close)


def _grpclib_codec() -> Any:
    from grpclib.encoding.base import CodecBase

    class RawCodec(CodecBase):  # type: ignore[misc,unused-ignore]
        """Pass-through bytes, as grpcio's ``None`` serialisers."""

        __content_subtype__ = "proto"

        def encode(self, message: Any, message_type: Any) -> bytes:
            return bytes(message)

        def decode(self, data: bytes, message_type: Any) -> bytes:
            return data

    return RawCodec()


async def _start_grpclib() -> ServerHandle:
    from grpclib.const import Cardinality, Handler
    from grpclib.server import Server

    class Echo:
        async def echo(self, stream: Any) -> None:
            request = await stream.recv_message()
            await stream.send_message(request)

        def __mapping__(self) -> dict[str, Any]:
            return {
                f"/{RAW_METHOD}": Handler(self.echo, Cardinality.UNARY_UNARY, bytes, bytes),
            }

    server = Server([Echo()], codec=_grpclib_codec())
    await server.start(HOST, 0)
    port = cast(Any, server)._server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()

    return ServerHandle(f"{HOST}:{port}", close)


def _thriftpy2_factories(framing: str, aio: bool) -> Any:
    if aio:
        from thriftpy2.contrib.aio.transport import (
            TAsyncBufferedTransportFactory,
            TAsyncFramedTransportFactory,
        )

        return (
            TAsyncFramedTransportFactory()
            if framing == "framed"
            else (TAsyncBufferedTransportFactory())
        )
    from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory

    return TFramedTransportFactory() if framing == "framed" else TBufferedTransportFactory()


async def _start_thriftpy2(kind: str, framing: str) -> ServerHandle:
    import socket

    from thriftpy2.contrib.aio.rpc import make_server as make_aio_server
    from thriftpy2.rpc import make_server

    module = _thrift_module()
    # thriftpy2 refuses port 0, so take a free port first.
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    if kind == "aio":
        server: Any = make_aio_server(
            module.BenchEcho,
            _ThriftEcho(),
            HOST,
            port,
            trans_factory=_thriftpy2_factories(framing, aio=True),
            client_timeout=None,
            loop=asyncio.get_running_loop(),
        )
        # TAsyncServer.init_server() runs the loop itself; do its two steps on ours.
        server.trans.listen()
        server.server = await server.trans.accept(server.handle)

        async def close_aio() -> None:
            await server.close()

        return ServerHandle(f"{HOST}:{port}", close_aio)
    # The threaded server: one thread per connection, serving from a background thread.
    threaded: Any = make_server(
        module.BenchEcho,
        _SyncThriftEcho(),
        HOST,
        port,
        trans_factory=_thriftpy2_factories(framing, aio=False),
        client_timeout=cast(int, None),  # thriftpy2 types it int; None means no timeout
    )
    threaded.daemon = True
    thread = threading.Thread(target=threaded.serve, daemon=True)
    thread.start()
    await asyncio.sleep(0.2)

    async def close_threaded() -> None:
        threaded.close()

    return ServerHandle(f"{HOST}:{port}", close_threaded)


# -- clients --------------------------------------------------------------------------


class EchoClient:
    """A connected client: ``call`` for one caller, ``concurrent_calls`` for many."""

    def __init__(
        self,
        call: Call,
        close: Callable[[], Awaitable[None]],
        *,
        connections_for: Callable[[int], Awaitable[list[Call]]] | None = None,
        connections_label: str = "1",
    ) -> None:
        self.call = call
        self._close = close
        self._connections_for = connections_for
        self.connections_label = connections_label

    async def concurrent_calls(self, in_flight: int) -> list[Call]:
        """One call function per concurrent worker (shared when the system multiplexes)."""
        if self._connections_for is None:
            return [self.call] * in_flight
        return await self._connections_for(in_flight)

    async def close(self) -> None:
        await self._close()


async def connect_ceiling(address: str) -> EchoClient:
    from ._ceiling import CeilingClient

    host, port = address.rsplit(":", 1)
    client = await CeilingClient.connect(host, int(port))
    return EchoClient(client.call, client.close)


async def connect_tether(
    transport: str, protocol: str, address: str, certs: Certs, in_flight: int
) -> EchoClient:
    import tether
    from tether.framing import get_framing

    tls = tether.TLSConfig(ca=certs.ca) if transport in TLS_TRANSPORTS else None
    multiplexed = (
        get_framing(protocol)
        .create(tether.framing.Role.CLIENT, tether.framing.CodecConfig())
        .multiplexed
    )
    pool = 1 if multiplexed else in_flight
    client = tether.Client(address, protocol=protocol, tls=tls, pool_size=pool)
    await client.connect()
    if protocol in THRIFT_PROTOCOLS:
        from ..thrift import ThriftStub

        stub = ThriftStub(client, _thrift_module().BenchEcho)
        call: Call = stub.echo
    else:
        call = functools.partial(client.unary, RAW_METHOD)
    return EchoClient(call, client.close, connections_label="1" if multiplexed else str(pool))


async def connect_peer(name: str, address: str) -> EchoClient:
    host, port = address.rsplit(":", 1)
    if name == "grpcio":
        import grpc

        channel = grpc.aio.insecure_channel(address)
        await channel.channel_ready()
        method = channel.unary_unary(f"/{RAW_METHOD}")

        async def close_grpcio() -> None:
            await channel.close()

        return EchoClient(method, close_grpcio)
    if name == "grpclib":
        from grpclib.client import Channel, UnaryUnaryMethod

        gchannel = Channel(host, int(port), codec=_grpclib_codec())
        gmethod = UnaryUnaryMethod(gchannel, f"/{RAW_METHOD}", bytes, bytes)

        async def close_grpclib() -> None:
            gchannel.close()

        return EchoClient(gmethod, close_grpclib)
    return await _connect_thriftpy2(name, host, int(port))


async def _connect_thriftpy2(name: str, host: str, port: int) -> EchoClient:
    from thriftpy2.contrib.aio.rpc import make_client as make_aio_client

    framing = name.rsplit("-", 1)[1]
    module = _thrift_module()
    clients: list[Any] = []

    async def connect_one() -> Any:
        client = await make_aio_client(
            module.BenchEcho,
            host,
            port,
            trans_factory=_thriftpy2_factories(framing, aio=True),
            timeout=None,
        )
        clients.append(client)
        return client

    first = await connect_one()
    extra: list[Call] = []

    async def connections_for(in_flight: int) -> list[Call]:
        while len(extra) < in_flight:
            extra.append((await connect_one()).echo)
        return extra[:in_flight]

    async def close() -> None:
        for client in clients:
            client.close()

    return EchoClient(first.echo, close, connections_for=connections_for, connections_label="100")
