"""Which build of tether's hot modules runs: mypyc-compiled C extensions or pure Python.

The build (``setup.py``) compiles the per-call modules with mypyc when it can, and then
writes ``_compiled_sources.txt`` next to them: the SHA-256 of every source it compiled.
Importing this module (``tether/__init__.py`` does it first) runs :func:`choose_build`:

* no manifest: nothing was compiled; the ``.py`` files load as usual;
* ``TETHER_PURE_PYTHON=1`` in the environment, or a source whose digest no longer
  matches (edited since the build; the compiled module would run the old code): every
  ``tether`` module is loaded from its ``.py`` file, the compiled ones are ignored. Mixing
  is never done, since compiled modules call each other directly.

:func:`describe_build` says which one ended up loaded (``tether --version`` prints it).
Not thread-safe; it is meant for import time.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

# os.path, not pathlib, and no json at import: this module runs at every ``import
# tether``, and pathlib (which pulls in urllib) and json would add to every process.
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_MANIFEST = os.path.join(_PACKAGE, "_compiled_sources.txt")
_PROBE = "tether.framing._native"  # a compiled module, when the build compiled any

_reason = ""
_chosen = False  # the compiled build is fresh and not overridden


class _SourceFinder:
    """Finds ``tether.*`` modules as ``.py`` files only, skipping compiled extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("tether.") or path is None:
            return None
        name = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, name + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None  # a package or a module not found here: the usual finders decide


def stale_sources(package: str, manifest: str) -> list[str]:
    """The sources (relative to ``package``) that changed since ``manifest`` was written.

    ``manifest`` has one line per source: ``sha256 size mtime_ns relative-path``. A source
    whose size and mtime match is unchanged (one ``stat``, no hashing); otherwise its
    SHA-256 decides. A missing source counts as changed, and an unreadable manifest makes
    the whole build stale.
    """
    try:
        with open(manifest, encoding="utf-8") as file:
            entries = [line.split(" ", 3) for line in file.read().splitlines() if line]
        checked = [(d, int(size), int(mtime), rel) for d, size, mtime, rel in entries]
    except (OSError, ValueError):
        return ["(unreadable manifest)"]
    stale = []
    for digest, size, mtime_ns, relative in checked:
        path = os.path.join(package, relative)
        try:
            info = os.stat(path)
            if info.st_size == size and info.st_mtime_ns == mtime_ns:
                continue
            import hashlib  # only when a source looks touched

            with open(path, "rb") as file:
                actual = hashlib.sha256(file.read()).hexdigest()
        except OSError:
            actual = ""
        if actual != digest:
            stale.append(relative)
    return stale


def _probe_built() -> bool:
    """Is there a compiled extension for the probe module (left by some earlier build)?"""
    probe = os.path.join(_PACKAGE, *_PROBE.split(".")[1:])
    return any(os.path.exists(probe + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def choose_build() -> None:
    """Load the pure-Python modules instead of compiled ones when asked or when stale."""
    global _reason, _chosen
    if not os.path.exists(_MANIFEST):
        _reason = "no compiled modules were built"
        if not _probe_built():
            return
        _reason = "compiled modules without a build manifest: reinstall to rebuild"
    elif os.environ.get("TETHER_PURE_PYTHON", "") not in ("", "0"):
        _reason = "TETHER_PURE_PYTHON is set"
    else:
        stale = stale_sources(_PACKAGE, _MANIFEST)
        if not stale:
            _chosen = True
            return
        _reason = f"compiled modules are older than {', '.join(stale)}: reinstall to rebuild"
    if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())


def is_compiled() -> bool:
    """``True`` when the mypyc-compiled hot modules are the ones loaded (``tether`` loads
    them on first use; before that, whether the compiled build was chosen)."""
    module = sys.modules.get(_PROBE)
    if module is None:
        return _chosen
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def describe_build() -> str:
    """``"compiled (mypyc)"`` or ``"pure Python (<why>)"``, for ``tether --version``."""
    if is_compiled():
        return "compiled (mypyc)"
    return f"pure Python ({_reason or 'compiled modules not loaded'})"


choose_build()
