"""What ``import tether`` and a native TCP server load (their memory is a benchmark target)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import tether

#: Third-party stacks a native-protocol server must never pay for.
HEAVY = ("msgpack", "thriftpy2", "google.protobuf", "h2", "hpack", "grpc", "aioquic")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.splitlines()[-1].split())


def test_import_tether_loads_only_the_package_and_its_version() -> None:
    """``import tether`` loads no tether submodule but _version and the build chooser
    (_compiled), and none of the heavy stacks."""
    modules = _modules_after("import tether")
    assert {m for m in modules if m.startswith("tether.")} == {
        "tether._version",
        "tether._compiled",
    }
    assert not {m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY}


def test_a_native_tcp_server_loads_no_other_protocol_codec_or_client() -> None:
    """Serving bytes over tcp:// loads neither other protocols, codecs, urllib nor the client."""
    modules = _modules_after(
        """
        import asyncio
        import tether

        service = tether.Service("t.Echo")

        @service.unary
        async def Echo(request: bytes) -> bytes:
            return request

        async def main() -> None:
            server = tether.Server([service])
            await server.start("tcp://127.0.0.1:0")
            server.close()
            await server.wait_closed()

        asyncio.run(main())
        """
    )
    unwanted = {
        "json",
        "pathlib",
        "urllib.parse",
        "ipaddress",
        "encodings.idna",
        "tether._client",
        "tether.encoding._msgpack",
        "tether.framing.thrift",
        "tether.framing.grpc._codec",
        "tether.transport._sniff",
    }
    assert not modules & unwanted
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert {"tether._server", "tether.framing._native", "tether.transport._tcp"} <= modules


def test_every_public_name_resolves_to_its_defining_object() -> None:
    """Each name in tether.__all__ is importable from tether and listed by dir(tether)."""
    from tether import _exceptions, _server, transport

    for name in tether.__all__:
        assert getattr(tether, name) is not None
    assert set(tether.__all__) <= set(dir(tether))
    assert tether.Server is _server.Server
    assert tether.StatusError is _exceptions.StatusError
    assert tether.transport is transport


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name tether does not export raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="NoSuchThing"):
        tether.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
