"""``tether serve demo``: serve the demo services until SIGINT/SIGTERM, then drain."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from .._config import TLSConfig
from .._exceptions import ConfigError, TransportError
from .._server import Server
from ..demo._services import demo_services
from ..transport import parse_address
from ._errors import EXIT_FAILED, UsageError
from ._tls import is_tls_scheme
from ._worker_mode import WORKER_PID_HEADER, tag_replies, watch_parent


async def start_listeners(
    server: Server, urls: Sequence[str], tls: TLSConfig | None, *, reuse_port: bool = False
) -> None:
    """Listen on every URL, handing ``tls`` to TLS schemes only (the others reject it).

    Raises:
        ConfigError: a URL is malformed or its scheme unknown.
        TransportError: binding failed.
    """
    for url in urls:
        address = parse_address(url)
        secure = is_tls_scheme(address.scheme) or address.param("tls") == "optional"
        await server.start(url, tls=tls if secure else None, reuse_port=reuse_port)


async def serve_demo(
    urls: Sequence[str], tls: TLSConfig | None, grace: float, *, worker: bool = False
) -> int:
    """Serve both demo services on every URL; print each address; drain on a signal.

    Returns the exit status: 0 after a graceful drain, 1 when binding failed.
    ``worker``: run as one of ``--workers`` (SO_REUSEPORT, replies tagged with the
    ``x-tether-worker-pid`` header, drain when the supervisor goes away).

    Raises:
        UsageError: a URL the transports reject (unknown scheme, bad address).
    """
    services = demo_services()
    if worker:
        services = tag_replies(services, {WORKER_PID_HEADER: str(os.getpid())})
    server = Server(services, grace=grace)
    try:
        await start_listeners(server, urls, tls, reuse_port=worker)
    except ConfigError as exc:
        await _abandon(server)
        raise UsageError(str(exc)) from exc
    except (TransportError, OSError) as exc:
        await _abandon(server)
        print(f"tether serve: cannot listen: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    force = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:  # before the addresses: whoever reads them may signal at once
        loop.add_signal_handler(signum, stop.set)
    orphan_watch = watch_parent(stop.set) if worker else None
    try:
        for address in server.addresses:
            print(address)
        sys.stdout.flush()
        names = ", ".join(service.name for service in server.services)
        print(f"tether serve: serving {names}; SIGINT/SIGTERM drains", file=sys.stderr, flush=True)
        await stop.wait()
        print(f"tether serve: draining (grace {grace:g}s)", file=sys.stderr, flush=True)
        for signum in signals:  # a second signal stops without waiting for the drain
            loop.add_signal_handler(signum, force.set)
        server.close()
        drained = await _first(server.wait_closed(), force.wait())
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if orphan_watch is not None:
            orphan_watch.cancel()
    if not drained:
        print("tether serve: stopped before the drain finished", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print("tether serve: stopped", file=sys.stderr, flush=True)
    return 0


async def _abandon(server: Server) -> None:
    """Close the listeners already bound when a later one failed."""
    server.close()
    await server.wait_closed()


async def _first(main: Coroutine[Any, Any, None], interrupt: Coroutine[Any, Any, Any]) -> bool:
    """Run both; True if ``main`` finished first (the other is cancelled either way)."""
    main_task = asyncio.ensure_future(main)
    interrupt_task = asyncio.ensure_future(interrupt)
    try:
        await asyncio.wait({main_task, interrupt_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        main_task.cancel()
        interrupt_task.cancel()
    return main_task.done() and not main_task.cancelled()
