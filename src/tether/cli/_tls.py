"""TLS settings from the command line, for ``tether serve`` and ``tether call``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._config import TLSConfig
from .._exceptions import ConfigError
from ..transport import get_transport, parse_address
from ._errors import UsageError


def is_tls_scheme(scheme: str) -> bool:
    """Schemes that take TLS settings: ``tls``, ``tls+<any>``, and every registered
    transport whose ``uses_tls`` is true (``quic``)."""
    if scheme == "tls" or scheme.startswith("tls+"):
        return True
    try:
        return get_transport(scheme).uses_tls
    except ConfigError:
        return False


def _scheme(url: str) -> str:
    try:
        return parse_address(url).scheme
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _check_files(**paths: Path | None) -> None:
    for flag, path in paths.items():
        if path is not None and not path.is_file():
            raise UsageError(f"--{flag} {path}: no such file")


def server_tls(
    urls: Sequence[str], cert: Path | None, key: Path | None, cacert: Path | None
) -> TLSConfig | None:
    """Listener TLS settings (``cacert``: require and verify client certificates).

    Raises:
        UsageError: a TLS URL without ``--cert``, ``--key``/``--cacert`` without
            ``--cert``, a missing file, or a malformed URL.
    """
    schemes = [_scheme(url) for url in urls]
    _check_files(cert=cert, key=key, cacert=cacert)
    if cert is None:
        if key is not None or cacert is not None:
            raise UsageError("--key and --cacert need --cert")
        if any(is_tls_scheme(scheme) for scheme in schemes):
            raise UsageError("TLS listeners need --cert (and --key unless the cert file has it)")
        return None
    return TLSConfig(cert=cert, key=key, ca=cacert)


def client_tls(
    url: str,
    *,
    cacert: Path | None,
    cert: Path | None,
    key: Path | None,
    server_name: str | None,
) -> TLSConfig | None:
    """Client TLS settings for a TLS URL (or whenever a TLS flag was given).

    Raises:
        UsageError: ``--key`` without ``--cert``, a missing file, or a malformed URL.
    """
    if key is not None and cert is None:
        raise UsageError("--key needs --cert")
    _check_files(cacert=cacert, cert=cert, key=key)
    given = (cacert, cert, server_name)
    if not is_tls_scheme(_scheme(url)) and all(flag is None for flag in given):
        return None
    return TLSConfig(cert=cert, key=key, ca=cacert, server_name=server_name)
