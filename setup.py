"""Build hook: compile tether's hot modules to C extensions with mypyc, when possible.

``pyproject.toml`` holds every piece of metadata; this file only adds the extension
modules. The same ``.py`` files are the pure-Python fallback, used when:

* ``TETHER_PURE_PYTHON=1`` is set at build time (nothing is compiled);
* mypyc is not importable or no C compiler works (a warning, then a pure build);
* at run time, ``TETHER_PURE_PYTHON=1`` is set or a compiled module is older than its
  source (see ``tether/_compiled.py``).

``docs/compiled.md`` explains how to build either way and how to tell which is loaded.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SRC = Path(__file__).parent / "src"

#: Compiled modules (relative to ``src``): the per-call path and its sans-I/O codec.
COMPILED = [
    "tether/buffer.py",
    "tether/transport/_socket_io.py",
    "tether/framing/_base.py",
    "tether/framing/_credit.py",
    "tether/framing/_events.py",
    "tether/framing/_native.py",
    "tether/framing/_native_control.py",
    "tether/framing/_native_core.py",
    "tether/framing/_native_events.py",
    "tether/framing/_native_frames.py",
    "tether/framing/_native_receive.py",
    "tether/framing/_native_send.py",
    "tether/framing/_native_state.py",
    "tether/framing/_native_streams.py",
    "tether/_dispatch/_base.py",
    "tether/_dispatch/_connection.py",
    "tether/_dispatch/_detect.py",
    "tether/_dispatch/_eager.py",
    "tether/_dispatch/_keepalive.py",
    "tether/_dispatch/_state.py",
    "tether/_dispatch/_stream.py",
    "tether/_calls.py",
    "tether/_context.py",
    "tether/_server.py",
    "tether/_server_call.py",
    "tether/_client.py",
    "tether/_client_codecs.py",
    "tether/_client_pool.py",
    "tether/_stub.py",
    # The Thrift path (framing/thrift/, encoding/_thrift.py): see docs/thrift.md.
    "tether/framing/thrift/_binary.py",
    "tether/framing/thrift/_codec_send.py",
    "tether/framing/thrift/_codec.py",
    "tether/framing/thrift/_envelope.py",
    "tether/framing/thrift/_exception.py",
    "tether/framing/thrift/_header_meta.py",
    "tether/framing/thrift/_meta.py",
    "tether/framing/thrift/_outgoing.py",
    "tether/framing/thrift/_theader.py",
    "tether/framing/thrift/_ttheader.py",
    "tether/encoding/_thrift.py",
    "tether/encoding/_thrift_flat.py",
    "tether/encoding/_thrift_guard.py",
    "tether/thrift/_codecs.py",
    "tether/thrift/_invoke.py",
    # shm://'s ring (its per-message index arithmetic and copies; see docs/transports.md).
    "tether/transport/_shm_ring.py",
    # The raw-bytes payload codecs, called on every raw call (both sides); the view
    # codec is the bench's raw echo's (memoryview handlers).
    "tether/encoding/_raw.py",
    "tether/encoding/_raw_view.py",
]
#: Compiled modules only a client loads: their own shared library, so a server process
#: (whose RSS the benchmark reports) maps no client code, and a client none of the rest.
CLIENT_ONLY = {
    "tether/_calls.py",
    "tether/_client.py",
    "tether/_client_codecs.py",
    "tether/_client_pool.py",
    "tether/_stub.py",
}


def _library(path: str) -> str:
    """The shared library a compiled module goes into (``<name>__mypyc`` in ``src``).

    One library per kind of process: native protocol core and server, client, and the
    Thrift protocols (which a native-protocol server never imports). Calls across
    libraries stay native calls (through mypyc's export tables).
    """
    if "/thrift/" in path or "/_thrift" in path:
        return "tether_thrift"
    if path in CLIENT_ONLY:
        return "tether_client"
    return "tether"


#: Written next to the compiled package: the SHA-256 of each source it was built from.
MANIFEST = "_compiled_sources.txt"
_DIGESTS: dict[str, str] = {}


def _pure_requested() -> bool:
    return os.environ.get("TETHER_PURE_PYTHON", "") not in ("", "0")


def _warn(message: str) -> None:
    print(f"tether build: {message}; installing the pure-Python modules", file=sys.stderr)


def _source_digests() -> dict[str, str]:
    return {
        path.removeprefix("tether/"): hashlib.sha256((SRC / path).read_bytes()).hexdigest()
        for path in COMPILED
    }


class OptionalBuildExt(build_ext):
    """``build_ext`` that falls back to pure Python when compiling fails.

    On failure every extension built so far is deleted (a half-built set would mix old
    and new code), and no manifest is written, so nothing compiled is ever loaded.
    """

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except (Exception, SystemExit) as exc:  # CompileError, LinkError, no compiler, ...
            _warn(f"compiling with mypyc failed ({type(exc).__name__}: {str(exc)[:160]})")
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            _remove_inplace_build()
            return
        package_dir = Path(self.get_ext_fullpath("tether.buffer")).parent
        (package_dir / MANIFEST).write_text(_manifest_text(SRC / "tether", _DIGESTS))


def _manifest_text(package: Path, digests: dict[str, str]) -> str:
    """One line per compiled source: ``sha256 size mtime_ns relative-path`` (the format
    ``tether/_compiled.py`` reads at import: a stat, not a hash, tells it nothing changed)."""
    lines = []
    for relative, digest in digests.items():
        info = (package / relative).stat()
        lines.append(f"{digest} {info.st_size} {info.st_mtime_ns} {relative}\n")
    return "".join(lines)


def _remove_inplace_build() -> None:
    """Delete what an earlier editable build left in ``src``: a module it compiled that is
    no longer compiled (or not compiled now) would still load from its stale ``.so``."""
    (SRC / "tether" / MANIFEST).unlink(missing_ok=True)
    for built in [*SRC.glob("tether*__mypyc.*.so"), *(SRC / "tether").rglob("*.so")]:
        built.unlink()


def _builds_code() -> bool:
    """Does this setup.py run build extensions (not just report metadata or requirements)?"""
    return any(
        command in sys.argv
        for command in ("build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop")
    )


def _groups() -> list[tuple[list[str], str | None]]:
    groups: dict[str, list[str]] = {}
    for path in COMPILED:
        groups.setdefault(_library(path), []).append(f"src/{path}")
    return [(files, name) for name, files in groups.items()]


def _extensions() -> list[object]:
    if not _builds_code():
        return []
    if _pure_requested():
        _remove_inplace_build()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        _warn(f"mypyc is not available ({exc})")
        _remove_inplace_build()
        return []
    _remove_inplace_build()  # the new build may compile fewer modules than the last one
    # Digests of what mypyc reads now: an edit made during the build then shows as stale.
    _DIGESTS.update(_source_digests())
    cwd = os.getcwd()
    os.chdir(SRC.parent)  # mypyc wants paths relative to the project root
    try:
        return list(
            mypycify(
                [
                    # The isolated build environment lacks tether's dependencies: their
                    # types become Any there, and only the compiled modules are checked.
                    "--ignore-missing-imports",
                    "--follow-imports=silent",
                    "--no-warn-unused-ignores",
                    *(f"src/{path}" for path in COMPILED),
                ],
                opt_level="3",
                debug_level="0",
                separate=_groups(),
            )
        )
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error or unsupported code
        _warn(f"mypyc could not translate the modules ({exc})")
        _remove_inplace_build()
        return []
    finally:
        os.chdir(cwd)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
