"""``tether call --protocol NAME`` for every Thrift-family protocol, against one
``tether serve demo`` port that recognises them all."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from .helpers import Run, ServeProcess

HEADERS = ["ttheader", "ttheader_framed", "theader"]
NO_HEADERS = ["buffered", "framed"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("protocol", NO_HEADERS + HEADERS)
def test_thrift_unary_over_each_protocol(
    tether: Run, demo_server: ServeProcess, protocol: str
) -> None:
    """Echo/Unary answers over every protocol; header protocols carry -H metadata."""
    url = demo_server.address("tcp")
    data = json.dumps({"data": _b64(b"ab"), "repeat": 2})
    result = tether(
        "call", "--protocol", protocol, url, "Echo/Unary", "--data", data, "-H", "x-k=v"
    )
    assert result.returncode == 0, result.stderr
    expected = {"x-k": "v"} if protocol in HEADERS else {}
    assert json.loads(result.stdout) == {"data": _b64(b"abab"), "metadata": expected}


def test_protobuf_unary_over_kitex_protobuf(tether: Run, demo_server: ServeProcess) -> None:
    """The protobuf demo service answers Kitex Protobuf (TTHeaderFramed, magic 0x9001)."""
    url = demo_server.address("tcp")
    result = tether(
        "call",
        "--protocol",
        "kitex_protobuf",
        url,
        "tether.demo.Echo/Unary",
        "--data",
        json.dumps({"data": _b64(b"pb")}),
        "-H",
        "x-k=v",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"data": _b64(b"pb"), "metadata": {"x-k": "v"}}


@pytest.mark.parametrize("protocol", ["framed", "ttheader"])
def test_unknown_method_prints_unimplemented(
    tether: Run, demo_server: ServeProcess, protocol: str, tmp_path: Path
) -> None:
    """A method the server lacks prints Kitex's unknown-service text with UNIMPLEMENTED."""
    idl = tmp_path / "more.thrift"
    idl.write_text("service Echo { void Missing() }\n")
    url = demo_server.address("tcp")
    result = tether(
        "call", "--protocol", protocol, url, "Echo/Missing", "--data", "{}", "--thrift", idl
    )
    assert result.returncode == 1
    service = "Echo" if protocol == "ttheader" else ""
    assert result.stderr.strip() == f"UNIMPLEMENTED: unknown service {service}, method Missing"
