"""Interop tests: tether against real third-party peers over 127.0.0.1.

Every test in this package carries the ``interop`` marker (``-m "not interop"`` skips
them). Peers run in the test process: thriftpy2's asyncio server on the test's loop,
threaded servers (thriftpy2's and Apache Thrift's) in a daemon thread, sync clients via
``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory, TServerSocket

import tether
from tether.demo._services import demo_services
from tether.demo._thrift import echo_thrift

from ..grpc.conftest import tls_files as tls_files
from .peers import SyncEchoHandler, run_in_thread, unblock_accept

SYNC_TRANSPORTS = {"framed": TFramedTransportFactory, "buffered": TBufferedTransportFactory}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture
async def tether_server() -> AsyncIterator[tuple[str, int]]:
    """A tether server with the demo services, every protocol on one TCP port."""
    server = tether.Server(demo_services())
    await server.start("tcp://127.0.0.1:0")
    host, port = server.addresses[0].removeprefix("tcp://").rsplit(":", 1)
    try:
        yield host, int(port)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(params=["framed", "buffered"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def threaded_server(protocol: str) -> Iterator[int]:
    """thriftpy2's TThreadedServer (make_server) serving Echo; yields its port."""
    # make_server() without its host/port check: port 0 picks a free port.
    server = TThreadedServer(
        TProcessor(echo_thrift.Echo, SyncEchoHandler()),
        TServerSocket(host="127.0.0.1", port=0),
        iprot_factory=TBinaryProtocolFactory(),
        itrans_factory=SYNC_TRANSPORTS[protocol](),
    )
    server.trans.listen()
    port = server.trans.sock.getsockname()[1]

    def serve() -> None:  # TThreadedServer.serve() without its listen(): we bound port 0
        while not server.closed:
            client = server.trans.accept()
            if server.closed:
                client.close()
                break
            run_in_thread(lambda c=client: server.handle(c))

    thread = run_in_thread(serve)
    try:
        yield port
    finally:
        server.close()
        unblock_accept(port)
        thread.join(timeout=5)
        server.trans.close()
