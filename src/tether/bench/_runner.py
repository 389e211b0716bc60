"""Process orchestration: start every server and client process, warm up, measure, collect.

Every system has a server process (``tether.bench._serve``) and a client process
(``tether.bench._drive``). Only one system is measured at a time; runs are interleaved
(run 1 of every system, then run 2 ...) so slow drift of the machine hits all alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._scenarios import BULK, CONCURRENCY, SMALL

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    """How much work each scenario does per run, and how many runs there are."""

    runs: int = 5
    sequential_calls: int = 5_000
    concurrent_calls: int = 20_000
    bulk_calls: int = 100
    warmup_sequential: int = 1_000
    warmup_concurrent: int = 5_000
    warmup_bulk: int = 10
    #: A scenario of one run stops after this long (slow systems make fewer calls).
    max_seconds: float = 3.0
    loop: str = "uvloop"

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


def _read_line(stream: IO[bytes], timeout: float, what: str) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"{what}: no answer within {timeout:g}s")
    line = stream.readline().decode()
    if not line:
        raise RuntimeError(f"{what}: the process exited")
    return line.strip()


def _vm_field(pid: int, name: str) -> int | None:
    """A ``Vm*`` field (e.g. VmRSS, VmHWM) of /proc/<pid>/status in bytes (``None`` if unavailable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return None


def _spawn(module: str, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ServerProcess:
    """A system's server subprocess."""

    key: str
    proc: subprocess.Popen[bytes]
    address: str = ""
    rss_start: int | None = None

    @classmethod
    def start(cls, key: str, loop: str, scratch: Path, cert_dir: Path) -> ServerProcess:
        scratch.mkdir(parents=True, exist_ok=True)
        proc = _spawn("tether.bench._serve", [key, loop, str(scratch), str(cert_dir)])
        server = cls(key, proc)
        assert proc.stdout is not None
        try:
            line = _read_line(proc.stdout, 60.0, f"{key} server")
        except Exception:
            server.stop()
            raise
        if not line.startswith("ADDRESS "):
            server.stop()
            raise RuntimeError(f"{key} server failed: {line.removeprefix('ERROR ')}")
        server.address = line.split(" ", 1)[1]
        server.rss_start = _vm_field(proc.pid, "VmRSS")
        return server

    def cpu_time(self) -> float:
        """The server process's CPU time so far."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"cpu\n")
        self.proc.stdin.flush()
        words = _read_line(self.proc.stdout, 30.0, f"{self.key} server cpu").split()
        if len(words) != 2 or words[0] != "CPU":
            raise RuntimeError(f"the {self.key} server answered {words!r} to 'cpu'")
        return float(words[1])

    def peak_rss(self) -> int | None:
        return _vm_field(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class ClientProcess:
    """A system's client subprocess (see :mod:`tether.bench._drive`)."""

    key: str
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, key: str, loop: str, address: str, cert_dir: Path) -> ClientProcess:
        proc = _spawn("tether.bench._drive", [key, loop, address, str(cert_dir)])
        client = cls(key, proc)
        try:
            client._answer(60.0)
        except Exception:
            client.stop()
            raise
        return client

    def _answer(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        reply: dict[str, Any] = json.loads(_read_line(self.proc.stdout, timeout, self.key))
        if not reply.pop("ok"):
            raise RuntimeError(f"{self.key}: {reply['error']}")
        return reply

    def command(self, timeout: float = 600.0, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class Results:
    """Every run of every figure, per system, and the systems that failed."""

    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, figure: str, value: float) -> None:
        self.runs.setdefault(key, {}).setdefault(figure, []).append(value)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


class Progress:
    """A progress bar on stderr (a line per step when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        elapsed = time.monotonic() - self.started
        text = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s  {label}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text[:150])
            if self.done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def note(self, message: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _measure_run(
    config: Config,
    server: ServerProcess,
    client: ClientProcess,
    results: Results,
) -> str:
    key = client.key
    cpu0 = server.cpu_time()
    budget = config.max_seconds
    seq = client.command(
        op="sequential", calls=config.sequential_calls, size=SMALL, max_seconds=budget
    )
    cpu1 = server.cpu_time()
    conc = client.command(
        op="concurrent",
        calls=config.concurrent_calls,
        size=SMALL,
        in_flight=CONCURRENCY,
        max_seconds=budget,
    )
    cpu2 = server.cpu_time()
    bulk = client.command(op="sequential", calls=config.bulk_calls, size=BULK, max_seconds=budget)
    results.add(key, "sequential_calls_per_s", seq["calls_per_s"])
    results.add(key, "sequential_p50_us", seq["p50_us"])
    results.add(key, "sequential_p99_us", seq["p99_us"])
    results.add(key, "sequential_client_cpu_us", seq["client_cpu_us"])
    results.add(key, "sequential_server_cpu_us", (cpu1 - cpu0) / seq["calls"] * 1e6)
    results.add(key, "concurrent_calls_per_s", conc["calls_per_s"])
    results.add(key, "concurrent_client_cpu_us", conc["client_cpu_us"])
    results.add(key, "concurrent_server_cpu_us", (cpu2 - cpu1) / conc["calls"] * 1e6)
    results.add(key, "bulk_mb_per_s", bulk["mb_per_s"])
    return (
        f"seq {seq['calls_per_s']:,.0f}/s conc {conc['calls_per_s']:,.0f}/s "
        f"bulk {bulk['mb_per_s']:,.0f} MB/s"
    )


def run_matrix(
    config: Config,
    keys: list[str],
    scratch: Path,
    cert_dir: Path,
    progress_factory: Callable[[int], Progress] = Progress,
) -> dict[str, Any]:
    """Measure every system in ``keys``; returns figures per system and failures."""
    results = Results()
    servers: dict[str, ServerProcess] = {}
    clients: dict[str, ClientProcess] = {}
    progress = progress_factory(2 * len(keys) + config.runs * len(keys))
    started = time.perf_counter()
    try:
        for key in keys:
            try:
                servers[key] = ServerProcess.start(
                    key, config.loop, scratch / str(len(servers)), cert_dir
                )
                clients[key] = ClientProcess.start(key, config.loop, servers[key].address, cert_dir)
            except Exception as exc:
                results.failed[key] = str(exc)
                progress.note(f"{key}: FAILED to start: {exc}")
            progress.step(f"started {key}")
        for key, client in list(clients.items()):
            try:
                checked = client.command(op="check")
                results.connections[key] = checked["connections"]
                client.command(op="sequential", calls=config.warmup_sequential, size=SMALL)
                client.command(
                    op="concurrent",
                    calls=config.warmup_concurrent,
                    size=SMALL,
                    in_flight=CONCURRENCY,
                )
                client.command(op="sequential", calls=config.warmup_bulk, size=BULK)
            except Exception as exc:
                results.failed[key] = str(exc)
                progress.note(f"{key}: FAILED during warm-up: {exc}")
                clients.pop(key).stop()
            progress.step(f"warmed up {key}")
        for i in range(config.runs):
            for key, client in list(clients.items()):
                try:
                    line = _measure_run(config, servers[key], client, results)
                except Exception as exc:
                    results.failed[key] = str(exc)
                    progress.note(f"{key}: FAILED in run {i + 1}: {exc}")
                    clients.pop(key).stop()
                    results.runs.pop(key, None)
                    line = "failed"
                progress.step(f"run {i + 1}/{config.runs} {key}: {line}")
        figures: dict[str, dict[str, Any]] = {}
        for key in clients:
            figures[key] = {name: summary(v) for name, v in results.runs.get(key, {}).items()}
            peak = servers[key].peak_rss()
            if peak is not None:
                figures[key]["server_peak_rss_mib"] = summary([peak / MIB])
            start_rss = servers[key].rss_start
            if start_rss is not None:
                figures[key]["server_start_rss_mib"] = summary([start_rss / MIB])
    finally:
        for client in clients.values():
            client.stop()
        for server in servers.values():
            server.stop()
    return {
        "figures": figures,
        "failed": results.failed,
        "connections": results.connections,
        "duration_s": time.perf_counter() - started,
    }


def cpu_info() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0
