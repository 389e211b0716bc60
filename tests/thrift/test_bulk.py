"""1 MiB Thrift calls end to end: the payload crosses by reference and lent views, every
lent frame is let go once the call is over, and a failing call lets go of it too."""

from __future__ import annotations

import asyncio
import gc
import io
from typing import Any

import pytest
import thriftpy2

import tether
from tether import buffer
from tether.thrift import ThriftStub, thrift_service

IDL = "service Blob {\n    binary echo(1: binary data)\n    binary fail(1: binary data)\n}\n"
blob_thrift: Any = thriftpy2.load_fp(io.StringIO(IDL), module_name="blob_thrift")
PROTOCOLS = ["buffered", "framed", "ttheader", "ttheader_framed", "theader"]
MIB = bytes(range(256)) * 4096


class Handler:
    def __init__(self) -> None:
        self.types: list[type] = []

    async def echo(self, data: bytes) -> bytes:
        self.types.append(type(data))
        return data

    async def fail(self, data: bytes) -> bytes:
        raise RuntimeError(f"refused {len(data)} bytes")


def no_view_left() -> bool:
    """Every large array given up to a view has no view left (nothing holds a frame)."""
    gc.collect()
    return all(buffer._unexported(array) for array in buffer._LENT_LARGE)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_one_mib_calls_cross_intact_and_let_their_frames_go(protocol: str) -> None:
    """Sequential and concurrent 1 MiB echoes return the bytes sent, the handler gets
    ``bytes`` (the one copy), and no lent frame is held after the calls."""
    buffer._LENT_LARGE.clear()
    handler = Handler()
    server = tether.Server([thrift_service(blob_thrift.Blob, handler)])
    await server.start("tcp://127.0.0.1:0")
    client = tether.Client(server.addresses[0], protocol=protocol, pool_size=4)
    try:
        stub = ThriftStub(client, blob_thrift.Blob)
        for _ in range(3):
            assert await stub.echo(MIB) == MIB
        others = [bytes([i]) * len(MIB) for i in range(4)]
        assert await asyncio.gather(*(stub.echo(data) for data in others)) == others
        assert set(handler.types) == {bytes}
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert buffer._LENT_LARGE or protocol == "theader"  # THeader's body is a copy
    assert no_view_left()


async def test_a_failing_large_call_lets_its_frame_go() -> None:
    """A handler error on a 1 MiB request fails that call only and holds no frame."""
    server = tether.Server([thrift_service(blob_thrift.Blob, Handler())])
    await server.start("tcp://127.0.0.1:0")
    client = tether.Client(server.addresses[0], protocol="framed")
    try:
        stub = ThriftStub(client, blob_thrift.Blob)
        with pytest.raises(tether.StatusError):
            await stub.fail(MIB)
        assert await stub.echo(MIB) == MIB
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert no_view_left()
