"""The demo IDLs ship unchanged: they are a contract shared with other teams."""

from __future__ import annotations

from pathlib import Path

import pytest

import tether.demo

SHARED = Path(__file__).resolve().parents[3] / "shared" / "idl"
PACKAGED = Path(tether.demo.__file__).parent


@pytest.mark.parametrize("name", ["echo.proto", "echo.thrift"])
def test_packaged_idl_matches_the_shared_contract(name: str) -> None:
    """The IDL inside the package is byte-for-byte the one in ../shared/idl/."""
    if not (SHARED / name).exists():
        pytest.skip("../shared/idl is not beside this checkout")
    assert (PACKAGED / name).read_bytes() == (SHARED / name).read_bytes()
