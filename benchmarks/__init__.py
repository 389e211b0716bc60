"""tether's benchmark harness: ``python -m benchmarks`` (see ``__main__``)."""

from __future__ import annotations
