"""Process orchestration, the measured scenarios and their statistics.

Each system's server runs in its own subprocess (``python -m benchmarks._serve SYSTEM LOOP``),
which prints ``PORT <n>`` once it listens and exits when its stdin closes. The clients
run in this process, on one event loop. Runs are interleaved (run 1 of every scenario for
the ceiling, then for tether, then run 2 ...) so slow drift of the machine hits both
systems alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import math
import os
import platform
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HOST = "127.0.0.1"
SYSTEMS = ("ceiling", "tether", "tether-grpc", "grpcio", "grpclib")
ROOT = Path(__file__).resolve().parent.parent
SMALL = 64
BULK = 1024 * 1024
CONCURRENCY = 100
MB = 1_000_000
MIB = 1024 * 1024

Call = Callable[[bytes], Awaitable[bytes]]


class EchoClient(Protocol):
    @property
    def call(self) -> Call: ...

    async def close(self) -> None: ...


class EchoServer(Protocol):
    @property
    def port(self) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Config:
    """How much work each scenario does (per run) and how many runs there are."""

    runs: int = 7
    sequential_calls: int = 30_000
    concurrent_calls: int = 100_000
    bulk_calls: int = 400
    warmup_sequential: int = 5_000
    warmup_concurrent: int = 20_000
    warmup_bulk: int = 40
    loop: str = "uvloop"
    systems: tuple[str, ...] = SYSTEMS
    pin: bool = False

    @classmethod
    def quick(cls, loop: str, calls: int | None = None) -> Config:
        n = calls or 500
        return cls(
            runs=2,
            sequential_calls=n,
            concurrent_calls=2 * n,
            bulk_calls=max(3, n // 100),
            warmup_sequential=max(10, n // 10),
            warmup_concurrent=max(CONCURRENCY, n // 5),
            warmup_bulk=2,
            loop=loop,
        )


# -- event loop -------------------------------------------------------------------------


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_description(name: str) -> str:
    if name == "uvloop":
        return f"uvloop {importlib.metadata.version('uvloop')}"
    return f"asyncio (stdlib, {sys.version.split()[0]})"


def run(main: Coroutine[Any, Any, Any], loop: str) -> Any:
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)


# -- server subprocesses ----------------------------------------------------------------


async def _start(system: str) -> EchoServer:
    if system == "ceiling":
        from . import _ceiling

        return await _ceiling.start_server(HOST)
    if system == "tether":
        from . import _tether

        return await _tether.start_server(HOST)
    from . import _grpc

    starts: dict[str, Callable[[str], Awaitable[EchoServer]]] = {
        "tether-grpc": _grpc.start_tether,
        "grpcio": _grpc.start_grpcio,
        "grpclib": _grpc.start_grpclib,
    }
    return await starts[system](HOST)


async def _connect(system: str, port: int) -> EchoClient:
    if system == "ceiling":
        from . import _ceiling

        return await _ceiling.CeilingClient.connect(HOST, port)
    if system == "tether":
        from . import _tether

        return await _tether.TetherClient.connect(HOST, port)
    from . import _grpc

    clients: dict[str, Any] = {
        "tether-grpc": _grpc.TetherGrpcClient,
        "grpcio": _grpc.GrpcioClient,
        "grpclib": _grpc.GrpclibClient,
    }
    client: EchoClient = await clients[system].connect(HOST, port)
    return client


def _vm_field(pid: int, name: str) -> int | None:
    """A ``VmXXX`` field of /proc/<pid>/status in bytes (``None`` if unavailable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return None


@dataclass
class ServerProcess:
    """A server subprocess of one system."""

    system: str
    proc: subprocess.Popen[bytes]
    port: int
    rss_start: int | None = None

    @classmethod
    def start(
        cls, system: str, loop: str, timeout: float = 30.0, cpus: set[int] | None = None
    ) -> ServerProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._serve", system, loop],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                proc.kill()
                raise RuntimeError(f"the {system} server did not start within {timeout:g}s")
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            proc.kill()
            raise RuntimeError(f"the {system} server failed to start (said {line!r})")
        if cpus:
            os.sched_setaffinity(proc.pid, cpus)
        server = cls(system, proc, int(line.split()[1]))
        server.rss_start = _vm_field(proc.pid, "VmRSS")
        return server

    def peak_rss(self) -> tuple[int, str]:
        """The process's peak resident set size and how it was measured."""
        peak = _vm_field(self.proc.pid, "VmHWM")
        if peak is not None:
            return peak, "/proc/<pid>/status VmHWM"
        import psutil  # type: ignore[import-untyped,unused-ignore]

        return psutil.Process(self.proc.pid).memory_info().rss, "psutil rss (current, not peak)"

    def cpu_time(self) -> float:
        """The server process's CPU time so far (it answers a ``cpu`` line on stdin)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"cpu\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "CPU":
            raise RuntimeError(f"the {self.system} server answered {line!r} to 'cpu'")
        return float(line[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- scenarios --------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


async def sequential(call: Call, calls: int, size: int) -> dict[str, float]:
    """One call at a time; per-call latency and throughput."""
    payload = os.urandom(size)
    clock = time.perf_counter_ns
    latencies = [0] * calls
    started = clock()
    for i in range(calls):
        t0 = clock()
        reply = await call(payload)
        latencies[i] = clock() - t0
        if len(reply) != size:
            raise AssertionError(f"echo returned {len(reply)} bytes, sent {size}")
    elapsed = (clock() - started) / 1e9
    latencies.sort()
    return {
        "calls_per_s": calls / elapsed,
        "p50_us": percentile(latencies, 0.50) / 1e3,
        "p99_us": percentile(latencies, 0.99) / 1e3,
        "mb_per_s": 2 * size * calls / elapsed / MB,
        "seconds": elapsed,
    }


async def concurrent(call: Call, calls: int, size: int, in_flight: int) -> dict[str, float]:
    """``in_flight`` tasks each loop on one call at a time: that many always in flight."""
    payload = os.urandom(size)
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            reply = await call(payload)
            if len(reply) != size:
                raise AssertionError(f"echo returned {len(reply)} bytes, sent {size}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    return {"calls_per_s": calls / elapsed, "seconds": elapsed}


async def check_echo(call: Call) -> None:
    """Replies must equal the requests (checked outside the timed runs)."""
    for size in (0, 1, SMALL, 100_000, BULK):
        payload = os.urandom(size)
        if await call(payload) != payload:
            raise AssertionError(f"echo of {size} bytes came back different")


@dataclass
class Results:
    """Every run of every figure, per system."""

    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, system: str, figure: str, value: float) -> None:
        self.runs.setdefault(system, {}).setdefault(figure, []).append(value)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


async def _timed(
    server: ServerProcess, calls: int, scenario: Awaitable[dict[str, float]]
) -> dict[str, float]:
    """Run ``scenario`` and add the server's and this process's CPU time per call (us)."""
    server_cpu = server.cpu_time()
    client_cpu = time.process_time()
    result = await scenario
    result["client_cpu_us"] = (time.process_time() - client_cpu) / calls * 1e6
    result["server_cpu_us"] = (server.cpu_time() - server_cpu) / calls * 1e6
    return result


async def measure(
    config: Config, servers: dict[str, ServerProcess], log: Callable[[str], None]
) -> Results:
    """Warm up, then run every scenario ``config.runs`` times for every system."""
    clients = {system: await _connect(system, server.port) for system, server in servers.items()}
    results = Results()
    try:
        for system, client in clients.items():
            await check_echo(client.call)
            await sequential(client.call, config.warmup_sequential, SMALL)
            await concurrent(client.call, config.warmup_concurrent, SMALL, CONCURRENCY)
            await sequential(client.call, config.warmup_bulk, BULK)
            log(f"warmed up {system}")
        for i in range(config.runs):
            for system, client in clients.items():
                server = servers[system]
                gc.collect()
                n = config.sequential_calls
                seq = await _timed(server, n, sequential(client.call, n, SMALL))
                gc.collect()
                n = config.concurrent_calls
                conc = await _timed(server, n, concurrent(client.call, n, SMALL, CONCURRENCY))
                gc.collect()
                bulk = await sequential(client.call, config.bulk_calls, BULK)
                results.add(system, "sequential_calls_per_s", seq["calls_per_s"])
                results.add(system, "sequential_p50_us", seq["p50_us"])
                results.add(system, "sequential_p99_us", seq["p99_us"])
                results.add(system, "sequential_server_cpu_us", seq["server_cpu_us"])
                results.add(system, "sequential_client_cpu_us", seq["client_cpu_us"])
                results.add(system, "concurrent_calls_per_s", conc["calls_per_s"])
                results.add(system, "concurrent_server_cpu_us", conc["server_cpu_us"])
                results.add(system, "concurrent_client_cpu_us", conc["client_cpu_us"])
                results.add(system, "bulk_mb_per_s", bulk["mb_per_s"])
                log(
                    f"run {i + 1}/{config.runs} {system:8s} "
                    f"seq {seq['calls_per_s']:9,.0f}/s p50 {seq['p50_us']:6.1f}us "
                    f"p99 {seq['p99_us']:6.1f}us | conc {conc['calls_per_s']:9,.0f}/s | "
                    f"bulk {bulk['mb_per_s']:7,.0f} MB/s | cpu/call seq "
                    f"{seq['client_cpu_us']:.1f}+{seq['server_cpu_us']:.1f}us conc "
                    f"{conc['client_cpu_us']:.1f}+{conc['server_cpu_us']:.1f}us (client+server)"
                )
    finally:
        for client in clients.values():
            await client.close()
    return results


def cpu_split(pin: bool) -> tuple[set[int], set[int]]:
    """Disjoint CPU sets for the client and the servers (empty: no pinning).

    With two or more usable CPUs the client gets the first and the servers the rest, so a
    client and its server always run on different CPUs. Off by default: unpinned, the
    scheduler sometimes puts both on one CPU, which makes a raw ping-pong faster (no
    cross-CPU wake-up) and the sequential figures bimodal; pinned, other load on the
    servers' CPU cannot be escaped and shows up as millisecond p99 spikes.
    """
    if not pin or not hasattr(os, "sched_getaffinity"):
        return set(), set()
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return set(), set()
    return {usable[0]}, set(usable[1:])


def run_all(config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Start the servers, measure, collect the servers' peak RSS; returns the raw record."""
    servers: dict[str, ServerProcess] = {}
    client_cpus, server_cpus = cpu_split(config.pin)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
        log(f"pinned: client on CPU {sorted(client_cpus)}, servers on CPU {sorted(server_cpus)}")
    try:
        for system in config.systems:
            servers[system] = ServerProcess.start(system, config.loop, cpus=server_cpus)
            log(f"{system} server: pid {servers[system].proc.pid}, port {servers[system].port}")
        started = time.perf_counter()
        results = run(measure(config, servers, log), config.loop)
        duration = time.perf_counter() - started
        figures: dict[str, dict[str, Any]] = {}
        rss_method = ""
        for system, server in servers.items():
            figures[system] = {
                name: summary(values) for name, values in results.runs[system].items()
            }
            peak, rss_method = server.peak_rss()
            figures[system]["server_peak_rss_mib"] = summary([peak / MIB])
            if server.rss_start is not None:
                figures[system]["server_start_rss_mib"] = summary([server.rss_start / MIB])
    finally:
        for server in servers.values():
            server.stop()
    return {"figures": figures, "rss_method": rss_method, "duration_s": duration}


# -- machine ----------------------------------------------------------------------------


def machine_info(loop: str) -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        import tether

        version = tether.__version__
    except ImportError:
        version = "unavailable"
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loop": loop_description(loop),
        "tether_version": version,
        "git_commit": commit,
    }
