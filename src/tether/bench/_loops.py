"""The event loop every benchmark process runs on (the same one for every system)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable


def default_loop() -> str:
    """``uvloop`` when installed, else the stdlib loop."""
    import importlib.util

    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_description(name: str) -> str:
    if name == "uvloop":
        # importlib.metadata costs megabytes: servers (whose RSS is measured) never call this.
        import importlib.metadata

        return f"uvloop {importlib.metadata.version('uvloop')}"
    return f"asyncio (stdlib, Python {sys.version.split()[0]})"
