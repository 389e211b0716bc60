"""tether ↔ Apache Thrift (PyPI ``thrift``): TFramedTransport / TBufferedTransport with
TBinaryProtocol, and THeader (header, framed and unframed client types), both ways."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from thrift.protocol.TBinaryProtocol import TBinaryProtocol, TBinaryProtocolFactory
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory
from thrift.server.TServer import TThreadedServer
from thrift.transport.THeaderTransport import THeaderClientType
from thrift.transport.TSocket import TServerSocket, TSocket
from thrift.transport.TTransport import (
    TBufferedTransport,
    TBufferedTransportFactory,
    TFramedTransport,
    TFramedTransportFactory,
)

import tether
from tether.demo._thrift import echo_thrift
from tether.thrift import ThriftStub

from . import apache_echo
from .peers import run_in_thread, unblock_accept
from .scenario import converse

ALL_HEADER_TYPES = (
    THeaderClientType.HEADERS,
    THeaderClientType.FRAMED_BINARY,
    THeaderClientType.UNFRAMED_BINARY,
)
SERVER_KINDS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "framed": lambda: (TFramedTransportFactory(), TBinaryProtocolFactory()),
    "buffered": lambda: (TBufferedTransportFactory(), TBinaryProtocolFactory()),
    "header": lambda: (TBufferedTransportFactory(), THeaderProtocolFactory(ALL_HEADER_TYPES)),
}


def _apache_server(kind: str) -> Iterator[int]:
    transport_factory, protocol_factory = SERVER_KINDS[kind]()
    server_socket = TServerSocket(host="127.0.0.1", port=0)
    server = TThreadedServer(
        apache_echo.Processor(apache_echo.Handler()),
        server_socket,
        transport_factory,
        protocol_factory,
        daemon=True,
    )
    server_socket.listen()
    port = server_socket.handle.getsockname()[1]
    stopped = False

    def serve() -> None:  # TThreadedServer.serve() minus listen() and with a way out
        while not stopped:
            client = server_socket.accept()
            if stopped:
                client.close()
                break
            run_in_thread(lambda c=client: server.handle(c))

    thread = run_in_thread(serve)
    try:
        yield port
    finally:
        stopped = True
        unblock_accept(port)
        thread.join(timeout=5)
        server_socket.close()


@pytest.fixture(
    params=[
        ("framed", "framed"),
        ("buffered", "buffered"),
        ("header", "theader"),
        ("header", "framed"),
        ("header", "buffered"),
    ],
    ids=lambda p: f"{p[0]}-server/{p[1]}-client",
)
def apache_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """An Apache TThreadedServer of the given kind, and the tether protocol to speak to it."""
    kind, protocol = request.param
    for port in _apache_server(kind):
        yield port, protocol


async def test_tether_client_to_apache_server(apache_server: tuple[int, str]) -> None:
    """tether's client talks to Apache's threaded server, 8 concurrent calls included."""
    port, protocol = apache_server
    async with tether.Client(f"tcp://127.0.0.1:{port}", protocol=protocol, timeout=10) as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        await converse(stub.Unary, stub.Notify, concurrent=8)


def _framed(sock: TSocket) -> Any:
    return TBinaryProtocol(TFramedTransport(sock))


def _buffered(sock: TSocket) -> Any:
    return TBinaryProtocol(TBufferedTransport(sock))


def _header(client_type: int) -> Callable[[TSocket], Any]:
    def make(sock: TSocket) -> Any:
        protocol = THeaderProtocol(sock, ALL_HEADER_TYPES)
        # Apache's client always writes HEADERS; a server switches per request. Choosing
        # another client type is what a THeader client talking to an old server does.
        protocol.trans._client_type = client_type
        return protocol

    return make


@pytest.mark.parametrize(
    "make_protocol",
    [
        _framed,
        _buffered,
        _header(THeaderClientType.HEADERS),
        _header(THeaderClientType.FRAMED_BINARY),
        _header(THeaderClientType.UNFRAMED_BINARY),
    ],
    ids=["framed", "buffered", "theader-headers", "theader-framed", "theader-unframed"],
)
async def test_apache_client_to_tether(
    tether_server: tuple[str, int], make_protocol: Callable[[TSocket], Any]
) -> None:
    """Apache's generated-style client (in a thread) talks to a tether server; THeader
    headers reach the handler."""
    host, port = tether_server
    sock = TSocket(host, port)
    sock.setTimeout(10000)
    protocol = make_protocol(sock)
    await asyncio.to_thread(protocol.trans.open)
    client = apache_echo.Client(protocol)
    try:

        async def unary(req: Any) -> Any:
            try:
                return await asyncio.to_thread(client.Unary, _apache_request(req))
            except apache_echo.EchoError as exc:  # the scenario speaks thriftpy2's classes
                raise echo_thrift.EchoError(message=exc.message, code=exc.code) from exc

        async def notify(req: Any) -> None:
            await asyncio.to_thread(client.Notify, _apache_request(req))

        await converse(unary, notify)
        headers = isinstance(protocol, THeaderProtocol) and protocol.trans._client_type == 0
        if headers:
            protocol.set_header(b"x-apache", b"hello")  # sent with the next message only
        reply = await unary(echo_thrift.EchoRequest(data=b"h"))
        assert reply.metadata == ({"x-apache": "hello"} if headers else {})
    finally:
        protocol.trans.close()


def _apache_request(req: Any) -> apache_echo.EchoRequest:
    return apache_echo.EchoRequest(
        data=req.data, repeat=req.repeat, delay_ms=req.delay_ms, fail=req.fail
    )
