"""``tether serve --workers N``: N worker processes on one port (SO_REUSEPORT), supervised.

The supervisor (rpcx's ``reuseport`` network, the pre-fork model without the fork):

* resolves port 0 once, by binding a ``SO_REUSEPORT`` socket that it keeps (bound, never
  listening, so it takes no connections) for its whole life: every worker, restarted
  ones included, listens on that same port, and nobody else can take it meanwhile;
* starts each worker as a fresh interpreter (``python -m tether serve ... --worker``,
  no ``fork()`` of a running event loop), waits for it to print its addresses, then
  prints the addresses once, like a single-process ``tether serve``;
* lets the kernel spread incoming connections over the workers' listening sockets;
* restarts a worker that exits unexpectedly, with an exponential back-off (0.1 s
  doubling to 5 s while workers keep dying within a second of starting), so a crash
  loop does not spin;
* on SIGTERM/SIGINT sends SIGTERM to every worker, each of which drains gracefully
  (``Server.close`` + ``wait_closed`` with ``--grace``), and exits 0 once all exited 0.
  A second signal forwards a second SIGTERM (workers stop without finishing the drain)
  and exits 1.

What a worker does differently (``--worker``) is in :mod:`._worker_mode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..transport import parse_address
from ._errors import EXIT_FAILED, UsageError

#: Schemes whose listeners are TCP sockets (and so can share a port with SO_REUSEPORT).
REUSEPORT_SCHEMES = frozenset({"tcp", "tls", "tls+tcp", "http-connect", "tls+http-connect"})

_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_QUICK_EXIT = 1.0  # a worker dying sooner than this after starting counts as a crash loop
_READY_TIMEOUT = 30.0


# -- the supervisor ------------------------------------------------------------------------


def worker_command(args: Any) -> list[str]:
    """The command line of one worker, from the parsed ``tether serve`` arguments
    (``--listen`` flags are added by :func:`supervise`, with port 0 resolved)."""
    argv = [sys.executable, "-m", "tether", "serve", args.what, "--worker"]
    argv += ["--grace", repr(args.grace)]
    for flag in ("cert", "key", "cacert"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag}", str(value)]
    return argv


def check_worker_urls(urls: Sequence[str]) -> None:
    """``--workers`` needs TCP listeners with a host.

    Raises:
        UsageError: a URL whose transport cannot share a port (``unix://``, ``memory://``).
    """
    for url in urls:
        address = parse_address(url)
        if address.scheme not in REUSEPORT_SCHEMES:
            raise UsageError(
                f"--workers: {url} cannot be shared by several processes "
                f"(use one of {', '.join(sorted(REUSEPORT_SCHEMES))})"
            )
        if address.port is None:
            raise UsageError(f"--workers: {url} needs a port")


def reserve_ports(urls: Sequence[str]) -> tuple[list[str], list[socket.socket]]:
    """Replace port 0 in ``urls`` by a free port held with a bound SO_REUSEPORT socket.

    Returns the URLs to hand to the workers and the sockets to keep open meanwhile.

    Raises:
        OSError: binding failed.
    """
    resolved: list[str] = []
    held: list[socket.socket] = []
    for url in urls:
        address = parse_address(url)
        if address.port != 0:
            resolved.append(url)
            continue
        host = address.host or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, 0))
        except OSError:
            sock.close()
            for other in held:
                other.close()
            raise
        held.append(sock)
        port = sock.getsockname()[1]
        scheme, _, rest = url.partition("://")
        authority, sep, tail = rest.partition("/")
        authority, qsep, query = authority.partition("?")
        host_part = authority.rsplit(":", 1)[0]
        resolved.append(f"{scheme}://{host_part}:{port}{qsep}{query}{sep}{tail}")
    return resolved, held


@dataclasses.dataclass
class _Worker:
    index: int
    backoff: float
    process: asyncio.subprocess.Process | None = None
    signalled: bool = False
    started: float = 0.0
    restarts: int = 0


class Supervisor:
    """Runs ``count`` copies of ``argv`` (each prints ``n_addresses`` lines when ready).

    A worker that exits less than a second after starting is restarted after
    ``first_backoff`` seconds, doubling up to ``max_backoff`` while that goes on; one
    that ran longer is restarted at once.
    """

    def __init__(
        self,
        argv: Sequence[str],
        count: int,
        n_addresses: int,
        *,
        first_backoff: float = _FIRST_BACKOFF,
        max_backoff: float = _MAX_BACKOFF,
    ) -> None:
        self._argv = list(argv)
        self._count = count
        self._n_addresses = n_addresses
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._workers = [_Worker(i, first_backoff) for i in range(count)]
        self._stopping = False
        self._changed = asyncio.Event()
        self._drains: set[asyncio.Task[None]] = set()
        self._stop_signal: int = signal.SIGTERM

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    @property
    def restarts(self) -> list[int]:
        """How many times each worker was restarted."""
        return [w.restarts for w in self._workers]

    @property
    def backoffs(self) -> list[float]:
        """Each worker's current restart delay after a quick exit."""
        return [w.backoff for w in self._workers]

    @property
    def pids(self) -> list[int]:
        """The pids of the workers currently running."""
        return [w.process.pid for w in self._workers if w.process is not None]

    async def start(self) -> list[str]:
        """Start every worker and wait until each printed its addresses; return them.

        Raises:
            RuntimeError: a worker exited (or stayed silent) before it was ready.
        """
        # All at once: each worker pays an interpreter start-up before it is ready.
        results = await asyncio.gather(
            *(self._spawn(worker) for worker in self._workers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        first = results[0]
        assert not isinstance(first, BaseException)
        return first

    async def run(self) -> None:
        """Restart workers that exit, until :meth:`stop` is called."""
        while not self._stopping:
            waits = {
                asyncio.ensure_future(w.process.wait()): w
                for w in self._workers
                if w.process is not None
            }
            stop = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                for task in waits:
                    task.cancel()
            if self.stopping:
                return
            for task, worker in waits.items():
                if task in done and not task.cancelled():
                    await self._restart(worker, task.result())

    def stop(self, sig: int = signal.SIGTERM, *, again: bool = False) -> None:
        """Send ``sig`` to every worker (SIGTERM: they drain) and stop restarting them.

        Each worker gets it once, unless ``again`` (a second SIGTERM stops a worker
        without waiting for its drain). A worker still starting gets it once ready.
        """
        self._stopping = True
        self._changed.set()
        self._stop_signal = sig
        for worker in self._workers:
            if again or not worker.signalled:
                self._signal(worker, sig)

    def _signal(self, worker: _Worker, sig: int) -> None:
        process = worker.process
        if process is not None and process.returncode is None:
            worker.signalled = True
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    async def wait(self) -> list[int]:
        """Wait for every worker to exit; return their exit statuses."""
        codes = [await w.process.wait() for w in self._workers if w.process is not None]
        for task in list(self._drains):
            task.cancel()
        return codes

    # -- internals -------------------------------------------------------------------------

    async def _spawn(self, worker: _Worker) -> list[str]:
        process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        worker.process = process
        worker.signalled = False
        worker.started = time.monotonic()
        assert process.stdout is not None
        addresses = []
        try:
            async with asyncio.timeout(_READY_TIMEOUT):
                for _ in range(self._n_addresses):
                    line = await process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"worker {worker.index} exited before it was ready")
                    addresses.append(line.decode().strip())
        except TimeoutError:
            process.kill()
            raise RuntimeError(f"worker {worker.index} was not ready in time") from None
        task = asyncio.ensure_future(_drain(process.stdout))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)
        _say(f"worker {worker.index} ready (pid {process.pid})")
        if self._stopping:
            self._signal(worker, self._stop_signal)  # stop() came while it was starting
        return addresses

    async def _restart(self, worker: _Worker, code: int) -> None:
        lived = time.monotonic() - worker.started
        if lived < _QUICK_EXIT:  # a crash loop: wait, longer each time
            delay = worker.backoff
            worker.backoff = min(worker.backoff * 2, self._max_backoff)
        else:
            delay = 0.0
            worker.backoff = self._first_backoff
        pid = worker.process.pid if worker.process is not None else "?"
        _say(f"worker {worker.index} (pid {pid}) exited with {code}; restarting in {delay:g}s")
        worker.process = None
        if delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._changed.wait()
        if self._stopping:
            return
        worker.restarts += 1
        try:
            await self._spawn(worker)
        except RuntimeError as exc:
            _say(str(exc))  # the next round of run() sees it gone and backs off further
            worker.started = time.monotonic()


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read a worker's stdout to EOF so it never blocks on a full pipe."""
    with contextlib.suppress(ConnectionError):
        while await stream.read(65536):
            pass


def _say(message: str) -> None:
    print(f"tether serve: {message}", file=sys.stderr, flush=True)


async def supervise(worker_argv: Sequence[str], urls: Sequence[str], count: int) -> int:
    """Run the supervisor for ``tether serve --workers``; returns the exit status."""
    check_worker_urls(urls)
    try:
        resolved, held = reserve_ports(urls)
    except OSError as exc:
        _say(f"cannot listen: {exc}")
        return EXIT_FAILED
    argv = [*worker_argv]
    for url in resolved:
        argv += ["--listen", url]
    supervisor = Supervisor(argv, count, len(resolved))
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    stop = asyncio.Event()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            addresses = await supervisor.start()
        except RuntimeError as exc:
            _say(str(exc))
            supervisor.stop(signal.SIGKILL)
            await supervisor.wait()
            return EXIT_FAILED
        for address in addresses:
            print(address)
        sys.stdout.flush()
        _say(f"supervising {count} workers (pids {supervisor.pids}); SIGINT/SIGTERM drains")
        runner = asyncio.ensure_future(supervisor.run())
        await stop.wait()
        _say("draining every worker")
        forced = asyncio.Event()
        for signum in signals:
            loop.add_signal_handler(signum, forced.set)
        supervisor.stop()
        await runner
        waiting = asyncio.ensure_future(supervisor.wait())
        force = asyncio.ensure_future(forced.wait())
        await asyncio.wait([waiting, force], return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            supervisor.stop(again=True)  # workers stop without finishing the drain
            await waiting
            force.cancel()
            return EXIT_FAILED
        force.cancel()
        codes = waiting.result()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        for sock in held:
            sock.close()
    if any(codes):
        _say(f"workers exited with {codes}")
        return EXIT_FAILED
    _say("stopped")
    return 0
