"""tether.thrift.load: IDL files parsed at run time, includes relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import tether
from tether.thrift import load
from tether.thrift._load import module_name_for


def test_load_names_the_module_after_the_file(tmp_path: Path) -> None:
    """``my-api.thrift`` becomes module ``my_api_thrift`` with its services and structs."""
    idl = tmp_path / "my-api.thrift"
    idl.write_text("struct Req { 1: string s }\nservice Api { string Get(1: Req r) }\n")
    module = load(idl)
    assert module.__name__ == "my_api_thrift"
    assert module.Api.thrift_services == ["Get"]
    assert module.Req(s="x").s == "x"


def test_includes_resolve_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``include`` names a file next to the including one, whatever the working dir."""
    sub = tmp_path / "idl"
    sub.mkdir()
    (sub / "base.thrift").write_text("struct Base { 1: i32 id }\n")
    (sub / "svc.thrift").write_text(
        'include "base.thrift"\nservice Svc { base.Base Echo(1: base.Base b) }\n'
    )
    monkeypatch.chdir(tmp_path)
    module = load(sub / "svc.thrift")
    assert module.Svc.Echo_args.thrift_spec[1][2].__name__ == "Base"


def test_missing_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    """A missing file or invalid IDL raises ConfigError naming the file."""
    with pytest.raises(tether.ConfigError, match="no Thrift IDL"):
        load(tmp_path / "absent.thrift")
    bad = tmp_path / "bad.thrift"
    bad.write_text("service {")
    with pytest.raises(tether.ConfigError, match=r"bad\.thrift"):
        load(bad)


def test_module_names_are_identifiers() -> None:
    """Names that are not identifiers are made into ones (thriftpy2 needs ``_thrift``)."""
    assert module_name_for(Path("1.x-y.thrift")) == "_1_x_y_thrift"
