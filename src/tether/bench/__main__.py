"""``python -m tether.bench``: the same as ``tether bench``."""

from __future__ import annotations

import sys

from ._command import main

sys.exit(main())
