"""Interop tests: tether against real third-party peers over 127.0.0.1.

Every test in this package carries the ``interop`` marker (``-m "not interop"`` skips
them). Peers run in the test process: thriftpy2's asyncio server on the test's loop,
threaded servers (thriftpy2's and Apache Thrift's) in a daemon thread, sync clients via
``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tether
from tether.demo._services import demo_services


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
