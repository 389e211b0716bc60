"""ResourceSnapshot sees descriptors and tasks a transport leaves behind, and only those."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from tether.testing._resources import ResourceSnapshot

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


async def test_an_open_socket_and_a_running_task_are_leaks() -> None:
    """A socket and a task made after the first snapshot are reported, by kind."""
    before = ResourceSnapshot.take()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    task = asyncio.create_task(asyncio.sleep(3600))
    try:
        leaks = ResourceSnapshot.take().leaks_since(before)
        assert len(leaks) == 2, leaks
        assert "1 more fds: {'socket': 1}" in leaks[0]
        assert leaks[1].startswith("1 tasks still running: <coroutine object sleep")
    finally:
        sock.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_closed_socket_and_finished_task_are_not() -> None:
    """Once the socket is closed and the task is done, nothing is reported."""
    before = ResourceSnapshot.take()
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    await asyncio.create_task(asyncio.sleep(0))
    assert ResourceSnapshot.take().leaks_since(before) == []


async def test_a_shared_memory_mapping_is_a_leak() -> None:
    """A mapped shared-memory segment made after the snapshot is reported."""
    from multiprocessing import shared_memory

    warmup = shared_memory.SharedMemory(create=True, size=4096)  # starts its tracker
    warmup.close()
    warmup.unlink()
    before = ResourceSnapshot.take()
    segment = shared_memory.SharedMemory(create=True, size=4096)
    try:
        leaks = ResourceSnapshot.take().leaks_since(before)
        assert any(leak.startswith("1 more shm") for leak in leaks), leaks
    finally:
        segment.close()
        segment.unlink()
    assert ResourceSnapshot.take().leaks_since(before) == []
