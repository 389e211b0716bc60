"""``python -m tether.cli``: the ``tether`` command."""

from __future__ import annotations

from ._main import main

raise SystemExit(main())
