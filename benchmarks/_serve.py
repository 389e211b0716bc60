"""The server subprocess: ``python -m benchmarks._serve SYSTEM LOOP``.

Kept apart from the harness so a server process imports only asyncio, the event loop and
the system under test (its RSS is one of the figures). It prints ``PORT <n>`` once it
listens and serves until its stdin closes (the harness exits) or it gets SIGTERM. A
``cpu`` line on stdin is answered with ``CPU <seconds>``: the process's CPU time so far.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable


async def serve(system: str) -> None:
    if system == "ceiling":
        from ._ceiling import start_server
    elif system == "tether":
        from ._tether import start_server  # type: ignore[assignment]
    elif system in ("tether-grpc", "grpcio", "grpclib"):
        from . import _grpc

        start_server = getattr(_grpc, "start_" + system.replace("tether-grpc", "tether"))
    else:
        raise SystemExit(f"unknown system {system!r}")
    server = await start_server("127.0.0.1")
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
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    try:
        await stop
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await server.close()


def main(argv: list[str]) -> None:
    system, loop = argv
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(system))


if __name__ == "__main__":
    main(sys.argv[1:])
