"""Loading Thrift IDL files at run time (thriftpy2, no code generation)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import thriftpy2

from .._exceptions import ConfigError


def module_name_for(path: Path) -> str:
    """The module name thriftpy2 gets for ``path``: its stem as an identifier + ``_thrift``
    (thriftpy2 requires the suffix); ``echo.thrift`` → ``echo_thrift``."""
    stem = re.sub(r"\W", "_", path.stem) or "idl"
    if stem[0].isdigit():
        stem = f"_{stem}"
    return f"{stem}_thrift"


def load(
    path: str | Path,
    *,
    module_name: str | None = None,
    include_dirs: Sequence[str | Path] = (),
) -> ModuleType:
    """Parse a ``.thrift`` file into a module of structs, exceptions and services.

    The module is named after the file (``echo.thrift`` → ``echo_thrift``) and registered
    in ``sys.modules`` under that name, so its structs pickle. ``include`` statements are
    resolved relative to the file's own directory first, then ``include_dirs``.

    Example::

        echo = tether.thrift.load("echo.thrift")
        server = tether.Server([tether.thrift.thrift_service(echo.Echo, EchoHandler())])

    Raises:
        ConfigError: the file does not exist or is not valid Thrift.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"no Thrift IDL file at {file}")
    name = module_name or module_name_for(file)
    if not name.endswith("_thrift"):
        raise ConfigError(f"a Thrift module name must end with '_thrift', not {name!r}")
    dirs: list[Any] = [str(file.resolve().parent), *(str(d) for d in include_dirs)]
    try:
        module: ModuleType = thriftpy2.load(str(file), module_name=name, include_dirs=dirs)
    except Exception as exc:  # thriftpy2 raises parser/grammar errors of several kinds
        raise ConfigError(f"could not load {file}: {exc}") from exc
    return module
