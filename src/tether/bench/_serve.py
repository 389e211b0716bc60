"""A server subprocess: ``python -m tether.bench._serve KEY LOOP SCRATCH_DIR CERT_DIR``.

Kept apart from the harness so a server process imports only what its system needs (its
RSS is a reported figure): the ceiling loads neither tether's modules nor the harness's,
a tether system loads tether and not the peers, a peer loads its own library. It prints
``ADDRESS <address>`` once it listens (or ``ERROR <reason>``) and serves until its stdin
closes or it gets SIGTERM. A ``cpu`` line on stdin is answered with ``CPU <seconds>``: the
process's CPU time so far (all threads).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from ._loops import loop_factory

if TYPE_CHECKING:
    from ._handle import ServerHandle


async def _start(key: str, scratch: str, cert_dir: str) -> ServerHandle:
    # Each branch imports only its own system (see the module docstring).
    if key == "ceiling":
        from ._ceiling import start_server
        from ._handle import ServerHandle

        ceiling = await start_server("127.0.0.1")
        return ServerHandle(f"127.0.0.1:{ceiling.port}", ceiling.close)
    family, _, rest = key.partition("/")
    if family == "peer":
        from ._systems import start_peer

        return await start_peer(rest)
    from ._systems import start_tether

    transport, _, protocol = rest.partition("/")
    return await start_tether(transport, protocol, scratch, cert_dir)


async def serve(key: str, scratch: str, cert_dir: str) -> None:
    try:
        server = await _start(key, scratch, cert_dir)
    except Exception as exc:  # reported to the harness, which marks the system failed
        sys.stdout.write(f"ERROR {type(exc).__name__}: {exc}\n".replace("\n", " ") + "\n")
        sys.stdout.flush()
        return
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    def on_stdin() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            finish()
            return
        for _ in range(data.count(b"cpu\n")):
            sys.stdout.write(f"CPU {time.process_time()!r}\n")
        sys.stdout.flush()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    loop.add_signal_handler(signal.SIGTERM, finish)
    sys.stdout.write(f"ADDRESS {server.address}\n")
    sys.stdout.flush()
    try:
        await stop
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await server.close()


def main(argv: list[str]) -> None:
    key, loop, scratch, cert_dir = argv
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(serve(key, scratch, cert_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
