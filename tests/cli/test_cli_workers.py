"""``tether serve demo --workers N``: one port shared by N processes (SO_REUSEPORT), a
killed worker is restarted, SIGTERM drains every worker with its calls finished."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import tether
from tether.cli._worker_mode import WORKER_PID_HEADER
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from .helpers import ServeProcess, run_tether, start_serve

HANG_GUARD = 30.0


async def _worker_pid(url: str) -> int:
    """Call Unary on a fresh connection; the pid of the worker that answered."""
    async with tether.Client(url, timeout=10) as client:
        reply, call = await client.unary(
            "tether.demo.Echo/Unary",
            EchoRequest(data=b"who"),
            response_type=EchoReply,
            with_call=True,
        )
        assert reply.data == b"who"
        return int(call.initial_metadata[WORKER_PID_HEADER])


async def _pids_until(url: str, done: object, limit: int = 400) -> set[int]:
    seen: set[int] = set()
    for _ in range(limit):
        seen.add(await _worker_pid(url))
        if callable(done) and done(seen):
            return seen
    return seen


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def workers() -> ServeProcess:
    serve = start_serve("--listen", "tcp://127.0.0.1:0", "--workers", "2", "--grace", "10")
    yield serve  # type: ignore[misc]
    if serve.process.poll() is None:
        serve.process.kill()
        serve.process.communicate(timeout=15)


async def test_connections_spread_and_a_killed_worker_is_restarted(
    workers: ServeProcess,
) -> None:
    """Both workers answer on one port; kill -9 one: calls keep working, it comes back."""
    url = workers.addresses[0]
    async with asyncio.timeout(HANG_GUARD):
        first = await _pids_until(url, lambda seen: len(seen) == 2)
    assert len(first) == 2, f"only {first} answered on 400 connections"
    victim, survivor = sorted(first)
    os.kill(victim, signal.SIGKILL)
    async with asyncio.timeout(HANG_GUARD):
        # Connections that reach a dying worker die with it: start once it is gone
        # (its supervisor reaps it), then nothing can land on its socket any more.
        while not _gone(victim):  # noqa: ASYNC110  (another process's death: no event)
            await asyncio.sleep(0.01)
        # Every call succeeds meanwhile; a third pid shows up: the restarted worker.
        seen = await _pids_until(url, lambda s: bool(s - first), limit=100_000)
    assert victim not in seen
    assert survivor in seen
    assert len(seen - first) == 1
    code, err = workers.stop()
    assert code == 0, err
    assert f"(pid {victim}) exited with -9; restarting" in err


async def test_sigterm_drains_every_worker_with_calls_in_flight(workers: ServeProcess) -> None:
    """SIGTERM: calls already running on both workers finish, then everything exits 0."""
    url = workers.addresses[0]
    request = EchoRequest(data=b"slow", repeat=3, delay_ms=300)
    clients: list[tether.Client] = []
    calls = []
    pids: set[int] = set()
    async with asyncio.timeout(HANG_GUARD):
        while len(pids) < 2 or len(calls) < 4:
            client = tether.Client(url, timeout=20)
            clients.append(client)
            call = client.server_stream(
                "tether.demo.Echo/ServerStream", request, response_type=EchoReply
            )
            first = await call.recv()  # the call is running on a worker now
            assert first is not None
            assert first.data == b"slow"
            pids.add(int((await call.initial_metadata())[WORKER_PID_HEADER]))
            calls.append(call)
        workers.terminate()
        for call in calls:
            rest = [reply.data async for reply in call]
            assert rest == [b"slow", b"slow"]
            assert call.status is tether.Status.OK
    for client in clients:
        await client.close()
    code, err = workers.stop()
    assert code == 0, err
    assert err.count("tether serve: stopped") == 3  # two workers and the supervisor
    assert all(_gone(pid) for pid in pids)


def test_workers_need_tcp_listeners() -> None:
    """--workers with a unix:// listener is a usage error (exit 2)."""
    result = run_tether("serve", "demo", "--listen", "unix:///tmp/x.sock", "--workers", "2")
    assert result.returncode == 2
    assert "cannot be shared" in result.stderr
    result = run_tether("serve", "demo", "--listen", "tcp://127.0.0.1:0", "--workers", "0")
    assert result.returncode == 2


async def test_workers_of_a_killed_supervisor_exit(workers: ServeProcess) -> None:
    """kill -9 the supervisor: its workers notice (parent gone), drain and exit."""
    url = workers.addresses[0]
    async with asyncio.timeout(HANG_GUARD):
        pids = await _pids_until(url, lambda seen: len(seen) == 2)
    workers.process.kill()
    workers.process.communicate(timeout=15)
    async with asyncio.timeout(HANG_GUARD):
        while not all(_gone(pid) for pid in pids):  # noqa: ASYNC110  (other processes)
            await asyncio.sleep(0.05)
