"""The event loop every benchmark process runs on (the same one for every system)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable


def default_loop() -> str:
    """``uvloop`` when installed, else the stdlib loop."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_description(name: str) -> str:
    if name == "uvloop":
        return f"uvloop {importlib.metadata.version('uvloop')}"
    return f"asyncio (stdlib, Python {sys.version.split()[0]})"
