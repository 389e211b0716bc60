"""Handlers that take and return views (RawViewCodec) over shm:// and unix://: the request
is the received frame itself, lent for good, and every way a call can end gives it back."""

from __future__ import annotations

import asyncio
import ctypes
import os
import weakref
from pathlib import Path
from typing import Any

import pytest

import tether

from .test_shm import no_leaks, shm_mappings

RING = 1 << 20  # lending stops at half of it (512 KiB pinned)


def view_service(seen: list[memoryview] | None = None) -> tether.Service:
    """``Echo`` returns its request view; ``Hold`` keeps it in ``seen``; ``Keep`` keeps it
    and replies with a copy (which the client then receives in its ring, not by
    reference); ``Block`` waits."""
    svc = tether.Service("views.Echo")

    @svc.unary
    async def Echo(request: memoryview) -> memoryview:
        return request

    @svc.unary
    async def Hold(request: memoryview) -> memoryview:
        assert seen is not None
        seen.append(request)
        return request

    @svc.unary
    async def Keep(request: memoryview) -> memoryview:
        assert seen is not None
        seen.append(request)
        return memoryview(bytes(request))

    @svc.unary
    async def Block(request: memoryview) -> bytes:
        assert seen is not None
        seen.append(request)
        await asyncio.Event().wait()
        return b""

    return svc


async def until(predicate: Any, turns: int = 200) -> None:
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0.01)
    assert predicate()


async def test_the_request_is_the_ring_region_and_cannot_be_written(sock_dir: Path) -> None:
    """Over shm:// a large request arrives as a read-only view of the shared ring (no
    copy), a small one as a view of bytes; both echo intact."""
    seen: list[memoryview] = []
    with no_leaks():
        server = tether.Server([view_service(seen)])
        await server.start(f"shm://{sock_dir}/v.sock")
        try:
            async with tether.Client(server.addresses[0]) as client:
                await client.unary("views.Echo/Echo", b"warm-up")  # the first call is sniffed
                for size in (100, 64 * 1024, 1 << 20):
                    payload = os.urandom(size)
                    assert await client.unary("views.Echo/Hold", payload) == payload
                small, lent, big = seen
                assert all(view.readonly for view in seen)
                assert isinstance(small.obj, bytes)
                assert isinstance(lent.obj, ctypes.Array)  # the ring, not a copy
                assert isinstance(big.obj, ctypes.Array)
                with pytest.raises(TypeError):
                    big[0] = 0
                seen.clear()
                del small, lent, big
        finally:
            server.close()
            await server.wait_closed()


async def test_an_echoed_request_goes_back_by_reference(sock_dir: Path) -> None:
    """A handler returning its request view over shm:// sends it back by reference: the
    client gets one copy made straight from its own ring (``bytes``, or a view of
    ``bytes``), sequential and concurrent calls alike, and no ring space stays taken."""
    with no_leaks():
        server = tether.Server([view_service()])
        await server.start(f"shm://{sock_dir}/ref.sock")
        try:
            async with tether.Client(server.addresses[0]) as client:
                await client.unary("views.Echo/Echo", b"warm-up")
                for size in (64 * 1024, 1 << 20, 3 << 19):
                    payload = os.urandom(size)
                    reply = await client.unary("views.Echo/Echo", payload)
                    assert type(reply) is bytes
                    assert reply == payload
                    view = await client.unary("views.Echo/Echo", payload, response_type=memoryview)
                    assert isinstance(view.obj, bytes)
                    assert view.obj == payload
                payloads = [os.urandom(100_000 + i) for i in range(12)]
                replies = await asyncio.gather(
                    *(client.unary("views.Echo/Echo", p) for p in payloads)
                )
                assert replies == payloads
        finally:
            server.close()
            await server.wait_closed()
        await until(lambda: shm_mappings() == 0)


async def test_unix_requests_are_the_receive_buffer_itself(sock_dir: Path) -> None:
    """Over unix:// the same handler gets the frame detached from the receive buffer."""
    seen: list[memoryview] = []
    server = tether.Server([view_service(seen)])
    await server.start(f"unix://{sock_dir}/v.sock")
    try:
        async with tether.Client(server.addresses[0]) as client:
            await client.unary("views.Echo/Echo", b"warm-up")
            payload = os.urandom(1 << 20)
            assert await client.unary("views.Echo/Hold", payload) == payload
            reply = await client.unary("views.Echo/Echo", payload, response_type=memoryview)
            assert isinstance(reply, memoryview)
            assert reply.readonly
            assert reply == payload
            assert isinstance(seen[0].obj, bytearray)
            assert isinstance(reply.obj, bytearray)
    finally:
        seen.clear()
        server.close()
        await server.wait_closed()


async def test_views_held_forever_never_stop_the_connection(sock_dir: Path) -> None:
    """A handler that keeps every request view: lending stops at half the ring, later
    requests are copied, the writer falls back to the socket, every call succeeds, and
    the held views never change; once dropped, requests are lent again."""
    seen: list[memoryview] = []
    with no_leaks():
        server = tether.Server([view_service(seen)])
        await server.start(f"shm://{sock_dir}/hold.sock?ring=1M")
        try:
            async with tether.Client(server.addresses[0]) as client:
                await client.unary("views.Echo/Echo", b"warm-up")
                payloads = [os.urandom(200 * 1024) for _ in range(16)]  # 3 MiB through 1 MiB
                for payload in payloads:
                    assert await client.unary("views.Echo/Hold", payload) == payload
                lent = [isinstance(view.obj, ctypes.Array) for view in seen]
                assert lent[:2] == [True, True]
                assert not any(lent[3:]), "lent beyond half the ring"
                for view, payload in zip(seen, payloads, strict=True):
                    assert view == payload, "a held view was overwritten"
                seen.clear()
                for _ in range(4):  # the ring path reopens once the fallback bytes are acked
                    payload = os.urandom(200 * 1024)
                    assert await client.unary("views.Echo/Echo", payload) == payload
                payload = os.urandom(200 * 1024)
                assert await client.unary("views.Echo/Hold", payload) == payload
                assert isinstance(seen[-1].obj, ctypes.Array), "not lent again after release"
                seen.clear()
        finally:
            server.close()
            await server.wait_closed()


async def test_a_cancelled_call_releases_its_request(sock_dir: Path) -> None:
    """A call that times out cancels its handler; the request's ring region is released."""
    seen: list[memoryview] = []
    server = tether.Server([view_service(seen)])
    await server.start(f"shm://{sock_dir}/cancel.sock")
    try:
        async with tether.Client(server.addresses[0]) as client:
            await client.unary("views.Echo/Echo", b"warm-up")
            with pytest.raises(tether.StatusError):
                await client.unary("views.Echo/Block", os.urandom(1 << 20), timeout=0.3)
            assert isinstance(seen[0].obj, ctypes.Array)
            region = weakref.ref(seen[0].obj)
            seen.clear()
            await until(lambda: region() is None)
            payload = os.urandom(1 << 20)
            assert await client.unary("views.Echo/Echo", payload) == payload
    finally:
        server.close()
        await server.wait_closed()


async def test_views_outlive_their_connection_then_unmap(sock_dir: Path) -> None:
    """Views held after both ends closed stay readable (the mapping outlives the
    connection); dropping the last one unmaps it: no mapping or fd is left."""
    seen: list[memoryview] = []
    with no_leaks():
        server = tether.Server([view_service(seen)])
        await server.start(f"shm://{sock_dir}/outlive.sock")
        payload = os.urandom(1 << 20)
        try:
            async with tether.Client(server.addresses[0]) as client:
                await client.unary("views.Echo/Echo", b"warm-up")
                reply = await client.unary("views.Echo/Keep", payload, response_type=memoryview)
                assert isinstance(reply.obj, ctypes.Array)  # the client's ring, too
        finally:
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0.05)
        assert shm_mappings() >= 2, "unmapped under a live view"
        assert reply == payload
        assert seen[0] == payload
        del reply
        seen.clear()
        await until(lambda: shm_mappings() == 0)


async def test_connection_loss_while_a_handler_holds_its_request(sock_dir: Path) -> None:
    """The client going away while a handler waits on its view: the handler is cancelled,
    the view stays valid, and nothing is left once it is dropped."""
    seen: list[memoryview] = []
    with no_leaks():
        server = tether.Server([view_service(seen)])
        await server.start(f"shm://{sock_dir}/lost.sock")
        payload = os.urandom(1 << 20)
        try:
            client = tether.Client(server.addresses[0])
            await client.unary("views.Echo/Echo", b"warm-up")
            call = asyncio.ensure_future(client.unary("views.Echo/Block", payload))
            await until(lambda: bool(seen))
            await client.close()
            with pytest.raises((tether.StatusError, asyncio.CancelledError)):
                await call
            assert seen[0] == payload
            region = weakref.ref(seen[0].obj)
            seen.clear()
            await until(lambda: region() is None)
        finally:
            server.close()
            await server.wait_closed()
        await until(lambda: shm_mappings() == 0)
