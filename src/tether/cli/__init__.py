"""The ``tether`` command: serve the demo services, call any method, run the demo.

``tether serve demo --listen URL ...``, ``tether call URL SERVICE/METHOD --data JSON ...``
and ``tether demo``; ``tether --help`` has the details.
"""

from __future__ import annotations

from ._main import main as main

__all__ = ["main"]
