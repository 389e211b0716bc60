"""tether ↔ thriftpy2: Framed and Buffered, its asyncio and threaded servers and clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import thriftpy2
from thriftpy2.contrib.aio.processor import TAsyncProcessor
from thriftpy2.contrib.aio.protocol.binary import TAsyncBinaryProtocolFactory
from thriftpy2.contrib.aio.rpc import make_client as make_aio_client
from thriftpy2.contrib.aio.server import TAsyncServer
from thriftpy2.contrib.aio.socket import TAsyncServerSocket
from thriftpy2.contrib.aio.transport import (
    TAsyncBufferedTransportFactory,
    TAsyncFramedTransportFactory,
)
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException

import tether
from tether.demo._thrift import echo_thrift
from tether.thrift import ThriftStub

from .conftest import SYNC_TRANSPORTS
from .peers import AsyncEchoHandler
from .scenario import converse

AIO_TRANSPORTS = {
    "framed": TAsyncFramedTransportFactory,
    "buffered": TAsyncBufferedTransportFactory,
}
ECHO_IDL = Path(echo_thrift.__thrift_file__)


@pytest.fixture
async def aio_server(protocol: str) -> AsyncIterator[int]:
    """thriftpy2's asyncio TAsyncServer serving Echo on the test's loop; yields its port."""
    server = TAsyncServer(
        TAsyncProcessor(echo_thrift.Echo, AsyncEchoHandler()),
        TAsyncServerSocket(host="127.0.0.1", port=0),
        iprot_factory=TAsyncBinaryProtocolFactory(),
        itrans_factory=AIO_TRANSPORTS[protocol](),
        loop=asyncio.get_running_loop(),
    )
    server.trans.listen()
    server.server = await server.trans.accept(server.handle)
    try:
        yield server.trans.raw_sock.getsockname()[1]
    finally:
        await server.close()


async def _tether_client_converses(port: int, protocol: str) -> None:
    async with tether.Client(f"tcp://127.0.0.1:{port}", protocol=protocol, timeout=10) as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        await converse(stub.Unary, stub.Notify, concurrent=8)


async def test_tether_client_to_thriftpy2_threaded_server(
    threaded_server: int, protocol: str
) -> None:
    """tether's client talks to thriftpy2's threaded server (8 calls at once included)."""
    await _tether_client_converses(threaded_server, protocol)


async def test_tether_client_to_thriftpy2_asyncio_server(aio_server: int, protocol: str) -> None:
    """tether's client talks to thriftpy2's asyncio server."""
    await _tether_client_converses(aio_server, protocol)


async def test_thriftpy2_sync_client_to_tether(
    tether_server: tuple[str, int], protocol: str
) -> None:
    """thriftpy2's blocking client (in a thread) talks to a tether server."""
    host, port = tether_server
    client = await asyncio.to_thread(
        make_client,
        echo_thrift.Echo,
        host,
        port,
        proto_factory=TBinaryProtocolFactory(),
        trans_factory=SYNC_TRANSPORTS[protocol](),
        timeout=10000,
    )
    try:

        async def unary(req: Any) -> Any:
            return await asyncio.to_thread(client.Unary, req)

        async def notify(req: Any) -> None:
            await asyncio.to_thread(client.Notify, req)

        await converse(unary, notify)
    finally:
        client.close()


async def test_thriftpy2_asyncio_client_to_tether(
    tether_server: tuple[str, int], protocol: str
) -> None:
    """thriftpy2's asyncio client talks to a tether server."""
    host, port = tether_server
    client = await make_aio_client(
        echo_thrift.Echo,
        host,
        port,
        proto_factory=TAsyncBinaryProtocolFactory(),
        trans_factory=AIO_TRANSPORTS[protocol](),
        timeout=10000,
    )
    try:
        await converse(client.Unary, client.Notify)
    finally:
        client.close()


@pytest.fixture
def extended(tmp_path: Path) -> Any:
    """echo.thrift plus a method ``Missing`` that tether's demo server does not have."""
    idl = tmp_path / "echo_more.thrift"
    idl.write_text(
        ECHO_IDL.read_text().replace("service Echo {", "service Echo {\n  void Missing(),")
    )
    return thriftpy2.load(str(idl), module_name="echo_more_thrift")


async def test_unknown_method_is_a_tapplication_exception(
    tether_server: tuple[str, int], protocol: str, extended: Any
) -> None:
    """A method the server lacks comes back as TApplicationException type 20 (Kitex's
    UnknownService), and the connection keeps serving."""
    host, port = tether_server
    client = await make_aio_client(
        extended.Echo,
        host,
        port,
        proto_factory=TAsyncBinaryProtocolFactory(),
        trans_factory=AIO_TRANSPORTS[protocol](),
        timeout=10000,
    )
    try:
        with pytest.raises(TApplicationException) as info:
            await client.Missing()
        assert info.value.type == 20
        assert info.value.message == "unknown service , method Missing"
        reply = await client.Unary(extended.EchoRequest(data=b"ok"))
        assert reply.data == b"ok"
    finally:
        client.close()
