"""Many connect/close cycles leave no file descriptors and no tasks behind."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
from pathlib import Path

import pytest

from tether.transport import ConnectOptions, ListenOptions

from .conftest import Accepted, Certs, Collector, dial, serving

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")

CYCLES = 60


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle() -> None:
    """Let closing transports finish (uvloop closes handles a loop iteration later)."""
    for _ in range(5):
        await asyncio.sleep(0.01)
    gc.collect()


@pytest.mark.parametrize(
    "template",
    [
        "tcp://127.0.0.1:0",
        "unix://{dir}/leak.sock",
        "unix://@tether-leak-{id}",
        "tls://127.0.0.1:0",
        "tls+unix://{dir}/leak-tls.sock",
        "memory://leak-{id}",
        "tls+memory://leak-{id}",
    ],
)
async def test_no_fd_or_task_leak(template: str, certs: Certs, sock_dir: Path, unique: str) -> None:
    """After many connect, exchange and close/abort cycles (either side closing), the
    process has the same open file descriptors and tasks as before."""
    url = template.format(dir=sock_dir, id=unique)
    tls = url.startswith("tls")
    listen: ListenOptions | None = certs.listen() if tls else None
    connect: ConnectOptions | None = certs.connect() if tls else None
    async with serving(url, listen) as (listener, warmup):
        # Warm up: the event loop creates some resources lazily on first use
        # (uvloop opens one descriptor for its thread pool, for instance).
        await _cycles(listener.address, connect, warmup, 1)
    await settle()
    fds_before = open_fds()
    tasks_before = len(asyncio.all_tasks())
    async with serving(url, listen) as (listener, accepted):
        await _cycles(listener.address, connect, accepted, CYCLES)
    await settle()
    assert len(asyncio.all_tasks()) == tasks_before, "tasks leaked"
    assert open_fds() == fds_before, f"fds leaked: {open_fds() - fds_before}"


def has_data(collector: Collector) -> bool:
    return bool(collector.data)


def has_ended(collector: Collector) -> bool:
    return bool({"eof", "inactive"} & set(collector.events))


async def _cycles(
    address: str, connect: ConnectOptions | None, accepted: Accepted, cycles: int
) -> None:
    for i in range(cycles):
        conn, mine = await dial(address, connect)
        conn.write_binary(b"ping %d" % i)
        conn.flush()
        async with asyncio.timeout(5):
            while len(accepted) <= i:
                await accepted.arrived.wait()
                accepted.arrived.clear()
        server, theirs = accepted[i]
        await theirs.until(functools.partial(has_data, theirs))
        server.write_binary(b"pong")
        server.flush()
        await mine.until(functools.partial(has_data, mine))
        closer, other = [(conn, server), (server, conn)][i % 2]
        if i % 3 == 2:
            closer.abort()
        else:
            closer.close()
        for side in (theirs, mine):
            await side.until(functools.partial(has_ended, side), 10)
        other.close()
        async with asyncio.timeout(10):
            await conn.wait_closed()
            await server.wait_closed()
