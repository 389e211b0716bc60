"""The scale scenario: many idle connections on one tether server process.

``python -m tether.bench._scale ADDRESS CONNECTIONS ACTIVE SECONDS LOOP`` is the client
side: it opens ``CONNECTIONS`` tether clients (each one TCP connection that completed the
native protocol's handshake), prints ``OPEN <n>``, waits for a ``go`` line, then lets
``ACTIVE`` of them call the echo one call at a time each for ``SECONDS`` and prints
``CALLS <calls per second>``. EOF on stdin closes everything.

:func:`run_scale` is the harness side: it reads the server's resident memory before and
after the connections are open, so memory per connection = (after - before) / n.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._loops import loop_factory
from ._runner import ServerProcess, _read_line, _stop, _vm_field
from ._systems import RAW_METHOD

_BATCH = 200


async def _open(url: str, count: int) -> list[Any]:
    import tether

    clients: list[tether.Client] = []
    while len(clients) < count:
        batch = [tether.Client(url) for _ in range(min(_BATCH, count - len(clients)))]
        await asyncio.gather(*(c.connect() for c in batch))
        clients.extend(batch)
    return clients


async def _active(clients: list[Any], seconds: float) -> float:
    payload = b"x" * 64
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(client: Any) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client.unary(RAW_METHOD, payload)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return done / (time.perf_counter() - started)


async def _drive(url: str, count: int, active: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    clients = await _open(url, count)
    sys.stdout.write(f"OPEN {len(clients)}\n")
    sys.stdout.flush()
    try:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() == "go":
            rate = await _active(clients[:active], seconds)
            sys.stdout.write(f"CALLS {rate!r}\n")
            sys.stdout.flush()
            await loop.run_in_executor(None, sys.stdin.readline)
    finally:
        for chunk in range(0, len(clients), _BATCH):
            await asyncio.gather(*(c.close() for c in clients[chunk : chunk + _BATCH]))


def run_scale(
    loop: str, connections: int, active: int, seconds: float, scratch: Path, cert_dir: Path
) -> dict[str, Any]:
    """Hold ``connections`` idle connections; report memory per connection and calls/s."""
    server = ServerProcess.start("tether/tcp/tether", loop, scratch, cert_dir)
    proc: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        before = _vm_field(server.proc.pid, "VmRSS") or 0
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tether.bench._scale",
                server.address,
                str(connections),
                str(active),
                str(seconds),
                loop,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdin is not None
        opened = int(_read_line(proc.stdout, 300.0, "scale client").split()[1])
        time.sleep(1.0)
        after = _vm_field(server.proc.pid, "VmRSS") or 0
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        rate = float(_read_line(proc.stdout, seconds + 120.0, "scale client").split()[1])
        peak = _vm_field(server.proc.pid, "VmHWM") or 0
    finally:
        if proc is not None:
            with contextlib.suppress(OSError):
                _stop(proc)
        server.stop()
    return {
        "connections": opened,
        "server_rss_before_mib": before / 2**20,
        "server_rss_idle_mib": after / 2**20,
        "bytes_per_connection": (after - before) / max(opened, 1),
        "active_connections": active,
        "active_calls_per_s": rate,
        "server_peak_rss_mib": peak / 2**20,
    }


def main(argv: list[str]) -> None:
    address, count, active, seconds, loop = argv
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(_drive(address, int(count), int(active), float(seconds)))


if __name__ == "__main__":
    main(sys.argv[1:])
