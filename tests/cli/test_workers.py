"""The worker supervisor's parts: crash-loop back-off, readiness, port reservation."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from tether.cli._errors import UsageError
from tether.cli._workers import Supervisor, check_worker_urls, reserve_ports

HANG_GUARD = 30.0


async def test_crash_loop_backs_off_exponentially() -> None:
    """A worker that dies right after starting is restarted with a doubling delay."""
    crashing = [sys.executable, "-c", "print('tcp://127.0.0.1:1')"]  # ready, then exits
    supervisor = Supervisor(crashing, 1, 1, first_backoff=0.01, max_backoff=0.04)
    assert await supervisor.start() == ["tcp://127.0.0.1:1"]
    runner = asyncio.ensure_future(supervisor.run())
    async with asyncio.timeout(HANG_GUARD):
        while supervisor.restarts[0] < 4:  # noqa: ASYNC110  (observing another process)
            await asyncio.sleep(0.01)
    # 0.01, 0.02, 0.04, then capped at 0.04.
    assert supervisor.backoffs == [0.04]
    supervisor.stop()
    await runner
    assert len(await supervisor.wait()) == 1  # stopped: no restart after stop()
    assert supervisor.restarts[0] in (4, 5)


async def test_worker_that_never_gets_ready_fails_start() -> None:
    """A worker that exits without printing its addresses makes start() fail."""
    supervisor = Supervisor([sys.executable, "-c", "pass"], 2, 1)
    with pytest.raises(RuntimeError, match="exited before it was ready"):
        await supervisor.start()
    supervisor.stop()
    await supervisor.wait()


def test_reserve_ports_resolves_port_zero_and_holds_it() -> None:
    """Port 0 becomes a real port held by a bound SO_REUSEPORT socket; others are kept."""
    urls, held = reserve_ports(
        ["tcp://127.0.0.1:0", "http-connect://127.0.0.1:0?tls=optional", "tcp://127.0.0.1:8972"]
    )
    try:
        assert len(held) == 2
        ports = [sock.getsockname()[1] for sock in held]
        assert urls == [
            f"tcp://127.0.0.1:{ports[0]}",
            f"http-connect://127.0.0.1:{ports[1]}?tls=optional",
            "tcp://127.0.0.1:8972",
        ]
        # A worker can listen on the held port with SO_REUSEPORT.
        worker = socket.socket()
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", ports[0]))
        worker.listen()
        worker.close()
    finally:
        for sock in held:
            sock.close()


def test_only_tcp_based_urls() -> None:
    """unix:// and memory:// cannot be shared by worker processes."""
    check_worker_urls(["tcp://127.0.0.1:0", "tls+http-connect://127.0.0.1:0"])
    for url in ("unix:///tmp/x.sock", "memory://x", "tcp://127.0.0.1"):
        with pytest.raises(UsageError):
            check_worker_urls([url])
