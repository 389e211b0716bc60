"""Shared test set-up: every async test runs on both the stdlib loop and uvloop; no\nHypothesis deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
from hypothesis import settings

# Property tests judge behaviour, never speed: on a loaded 2-core CI machine an example
# can take longer than Hypothesis's default 200 ms deadline, which is not a failure.
settings.register_profile("tether", deadline=None)
settings.load_profile("tether")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a default dependency on Linux
    uvloop = None


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Parametrise every async test over the stdlib event loop and uvloop."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories
