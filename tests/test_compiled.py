"""Choosing and reporting the build: mypyc-compiled hot modules or pure Python."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import tether
from tether import _compiled
from tether.cli._main import build_parser

_REPORT = (
    "import tether, tether.framing._native as m, tether._compiled as c; "
    "print(tether.__compiled__, m.__file__.endswith('.py'), c.describe_build())"
)


def _run_report(**env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _REPORT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip().split(" ", 2)


def test_compiled_flag_matches_the_module_actually_loaded() -> None:
    """``tether.__compiled__`` is True exactly when the probe module is a C extension."""
    from tether.framing import _native

    loaded_from_source = (_native.__file__ or "").endswith(".py")
    assert tether.__compiled__ is (not loaded_from_source)
    assert _compiled.is_compiled() is tether.__compiled__
    expected = "compiled (mypyc)" if tether.__compiled__ else "pure Python ("
    assert _compiled.describe_build().startswith(expected)


def test_a_fresh_compiled_build_is_the_one_loaded() -> None:
    """With a manifest whose sources are unchanged, the compiled modules load; otherwise
    the report names why the pure-Python modules run."""
    manifest = _compiled._MANIFEST
    pure_env = os.environ.get("TETHER_PURE_PYTHON", "") not in ("", "0")
    if (
        os.path.exists(manifest)
        and not pure_env
        and not _compiled.stale_sources(os.path.dirname(manifest), manifest)
    ):
        assert tether.__compiled__
    else:
        assert not tether.__compiled__
        assert "(" in _compiled.describe_build()


def test_pure_python_env_loads_every_module_from_source() -> None:
    """TETHER_PURE_PYTHON=1 at run time gives the pure-Python modules, compiled or not."""
    compiled, from_source, description = _run_report(TETHER_PURE_PYTHON="1")
    assert compiled == "False"
    assert from_source == "True"
    assert description.startswith("pure Python (")


def test_version_reports_the_build() -> None:
    """``tether --version`` names the build that is loaded."""
    version = build_parser()._actions[1]
    assert getattr(version, "version", "") == (
        f"tether {tether.__version__}, {_compiled.describe_build()}"
    )


def test_stale_sources_names_edited_and_missing_files(tmp_path: Path) -> None:
    """A source whose digest changed, or that is gone, is reported as stale."""
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "b.py").write_text("B = 1\n")
    lines = []
    for name in ("a.py", "b.py"):
        path = tmp_path / name
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest} {info.st_size} {info.st_mtime_ns} {name}\n")
    lines.append(f"{'0' * 64} 6 0 gone.py\n")
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("".join(lines))
    assert _compiled.stale_sources(str(tmp_path), str(manifest)) == ["gone.py"]
    (tmp_path / "b.py").write_text("B = 2\n")
    assert _compiled.stale_sources(str(tmp_path), str(manifest)) == ["b.py", "gone.py"]


def test_a_touched_but_unchanged_source_is_not_stale(tmp_path: Path) -> None:
    """A source whose mtime changed but whose bytes did not is still fresh (its hash decides)."""
    path = tmp_path / "a.py"
    path.write_text("A = 1\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.txt"
    manifest.write_text(f"{digest} {path.stat().st_size} 1 a.py\n")
    assert _compiled.stale_sources(str(tmp_path), str(manifest)) == []


def test_unreadable_manifest_makes_the_build_stale(tmp_path: Path) -> None:
    """A missing or corrupt manifest never lets compiled modules load."""
    assert _compiled.stale_sources(str(tmp_path), str(tmp_path / "missing.txt")) != []
    (tmp_path / "bad.txt").write_text("not a manifest line")
    assert _compiled.stale_sources(str(tmp_path), str(tmp_path / "bad.txt")) != []
