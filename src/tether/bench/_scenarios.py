"""The measured scenarios, run inside a client process against one connected system."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence

from ._systems import Call

SMALL = 64
BULK = 1024 * 1024
CONCURRENCY = 100
MB = 1_000_000


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


async def check_echo(call: Call) -> None:
    """Replies must equal the requests (checked before any timed run)."""
    for size in (0, 1, SMALL, 100_000, BULK):
        payload = os.urandom(size)
        reply = await call(payload)
        if reply != payload:
            raise AssertionError(f"the echo of {size} bytes came back different")


async def sequential(
    call: Call, calls: int, size: int, max_seconds: float | None = None
) -> dict[str, float]:
    """One call at a time: throughput and per-call latency.

    Stops early (after at least 10 calls) once ``max_seconds`` have passed, so a slow
    system costs the same time as a fast one; the figures count the calls made.
    """
    payload = os.urandom(size)
    clock = time.perf_counter_ns
    latencies: list[int] = []
    cpu = time.process_time()
    started = clock()
    deadline = None if max_seconds is None else started + int(max_seconds * 1e9)
    for i in range(calls):
        t0 = clock()
        reply = await call(payload)
        t1 = clock()
        latencies.append(t1 - t0)
        if len(reply) != size:
            raise AssertionError(f"the echo returned {len(reply)} bytes, sent {size}")
        if deadline is not None and t1 > deadline and i >= 9:
            break
    calls = len(latencies)
    elapsed = (clock() - started) / 1e9
    cpu = time.process_time() - cpu
    latencies.sort()
    return {
        "calls_per_s": calls / elapsed,
        "p50_us": percentile(latencies, 0.50) / 1e3,
        "p99_us": percentile(latencies, 0.99) / 1e3,
        "mb_per_s": 2 * size * calls / elapsed / MB,
        "client_cpu_us": cpu / calls * 1e6,
        "seconds": elapsed,
        "calls": calls,
    }


async def concurrent(
    calls_by_worker: list[Call], calls: int, size: int, max_seconds: float | None = None
) -> dict[str, float]:
    """One task per worker, each looping on one call at a time, until ``calls`` are done
    (or, with ``max_seconds``, until that time has passed; the figures count the calls made)."""
    payload = os.urandom(size)
    remaining = calls
    done = 0
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    async def worker(call: Call) -> None:
        nonlocal remaining, done
        while remaining > 0:
            remaining -= 1
            reply = await call(payload)
            done += 1
            if len(reply) != size:
                raise AssertionError(f"the echo returned {len(reply)} bytes, sent {size}")
            if deadline is not None and time.perf_counter() > deadline:
                remaining = 0

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(call) for call in calls_by_worker))
    calls = done
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "calls_per_s": calls / elapsed,
        "client_cpu_us": cpu / calls * 1e6,
        "seconds": elapsed,
        "calls": calls,
    }
