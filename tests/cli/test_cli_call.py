"""``tether call`` against a real ``tether serve demo``: replies as JSON lines, errors as statuses."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from .helpers import Certs, Run, ServeProcess

UNARY = "tether.demo.Echo/Unary"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def echo_reply(data: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """An EchoReply in protobuf's JSON mapping (fields without presence always printed)."""
    return {"data": b64(data), "metadata": metadata or {}}


@pytest.fixture(params=["tcp", "unix", "shm"])
def url(request: pytest.FixtureRequest, demo_server: ServeProcess) -> str:
    """The demo server's tcp, unix and shm addresses."""
    return demo_server.address(request.param)


def test_unary_echoes_metadata(tether: Run, url: str) -> None:
    """A unary call prints one compact JSON reply whose metadata map echoes the request's."""
    result = tether(
        "call",
        url,
        UNARY,
        "--data",
        json.dumps({"data": b64(b"hi"), "repeat": 2}),
        "--metadata",
        "x-user=ada",
        "--metadata",
        "x-blob-bin=" + b64(b"\x00\x01"),
    )
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        echo_reply(b"hihi", {"x-user": "ada", "x-blob-bin": b64(b"\x00\x01")})
    ]
    assert result.stdout.count(" ") == 0  # compact


def test_server_stream_prints_a_line_per_reply(tether: Run, url: str) -> None:
    """A server-streaming call prints each of the `repeat` replies on its own line."""
    result = tether(
        "call", url, "tether.demo.Echo/ServerStream", "--data", '{"data": "eA==", "repeat": 4}'
    )
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [echo_reply(b"x")] * 4


def test_client_stream_sends_every_data(tether: Run, url: str) -> None:
    """A client-streaming call sends one message per --data and prints the single reply."""
    parts = [b"con", b"cat", b"enated"]
    args = [arg for part in parts for arg in ("--data", json.dumps({"data": b64(part)}))]
    result = tether("call", url, "tether.demo.Echo/ClientStream", *args)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [echo_reply(b"concatenated")]


def test_bidi_stream_prints_each_reply(tether: Run, url: str) -> None:
    """A bidi call prints one reply per request, in order."""
    parts = [b"a", b"bb", b"ccc"]
    args = [arg for part in parts for arg in ("--data", json.dumps({"data": b64(part)}))]
    result = tether("call", url, "tether.demo.Echo/BidiStream", *args)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [echo_reply(part) for part in parts]


@pytest.mark.parametrize(
    "data",
    [{"req": {"data": b64(b"th"), "repeat": 3}}, {"data": b64(b"th"), "repeat": 3}],
    ids=["keyed-by-argument", "bare-argument"],
)
def test_thrift_unary(tether: Run, url: str, data: dict[str, Any]) -> None:
    """A Thrift method takes its arguments object, or its single argument's fields directly."""
    result = tether("call", url, "Echo/Unary", "--data", json.dumps(data), "-H", "x-k=v")
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [{"data": b64(b"ththth"), "metadata": {"x-k": "v"}}]


def test_thrift_declared_exception_maps_to_status(tether: Run, url: str) -> None:
    """EchoError(code=3) prints `INVALID_ARGUMENT: message` on stderr and exits 1."""
    result = tether("call", url, "Echo/Unary", "--data", '{"fail": "no thanks"}')
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "INVALID_ARGUMENT: no thanks"


def test_thrift_oneway_then_unary(tether: Run, demo_server: ServeProcess) -> None:
    """A oneway Notify prints nothing and the next Unary's metadata reports its data."""
    url = demo_server.address("tcp")
    notify = tether("call", url, "Echo/Notify", "--data", json.dumps({"data": b64(b"psst")}))
    assert (notify.returncode, notify.stdout) == (0, ""), notify.stderr
    result = tether("call", url, "Echo/Unary", "--data", "{}")
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[0]["metadata"] == {"notified": "psst"}


def test_thrift_file_adds_services(tether: Run, url: str, tmp_path: Path) -> None:
    """--thrift FILE makes its services callable (the demo server answers UNIMPLEMENTED)."""
    idl = tmp_path / "greeter.thrift"
    idl.write_text("service Greeter {\n  string Hello(1: string name),\n}\n")
    result = tether("call", url, "Greeter/Hello", "--data", '{"name": "ada"}', "--thrift", idl)
    assert result.returncode == 1
    assert result.stderr.strip() == "UNIMPLEMENTED: unknown service 'Greeter'"
    missing = tether("call", url, "Greeter/Hello", "--data", "{}", "--thrift", tmp_path / "no")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_proto_status_error(tether: Run, url: str) -> None:
    """A failed proto call prints `STATUS: message` on stderr and exits 1."""
    result = tether("call", url, UNARY, "--data", '{"fail": "boom"}')
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == "INVALID_ARGUMENT: boom"


def test_timeout_is_deadline_exceeded(tether: Run, url: str) -> None:
    """A reply slower than --timeout fails with DEADLINE_EXCEEDED and exit 1."""
    result = tether("call", url, UNARY, "--data", '{"delayMs": 5000}', "--timeout", "0.3")
    assert result.returncode == 1
    assert result.stderr.startswith("DEADLINE_EXCEEDED:"), result.stderr


def test_connection_refused_is_unavailable(tether: Run) -> None:
    """Nothing listening: `UNAVAILABLE: ...` on stderr and exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = tether("call", f"tcp://127.0.0.1:{port}", UNARY, "--data", "{}")
    assert result.returncode == 1
    assert result.stderr.startswith("UNAVAILABLE:"), result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((UNARY.replace("Unary", "Nope"), "--data", "{}"), "no method 'Nope'"),
        (("no.Such/Method", "--data", "{}"), "unknown service 'no.Such'"),
        ((UNARY,), "exactly one --data"),
        ((UNARY, "--data", "{}", "--data", "{}"), "exactly one --data"),
        ((UNARY, "--data", "{not json"), "not valid JSON"),
        ((UNARY, "--data", "[1]"), "must be a JSON object"),
        ((UNARY, "--data", '{"nope": 1}'), "does not fit"),
        ((UNARY, "--data", "{}", "--metadata", "novalue"), "KEY=VALUE"),
        ((UNARY, "--data", "{}", "--metadata", "x-bin=!!!"), "base64"),
        ((UNARY, "--data", "{}", "--timeout", "0"), "must be positive"),
    ],
    ids=[
        "unknown-method",
        "unknown-service",
        "no-data",
        "two-data",
        "bad-json",
        "not-object",
        "unknown-field",
        "bad-metadata",
        "bad-base64",
        "bad-timeout",
    ],
)
def test_usage_errors_exit_2(
    tether: Run, demo_server: ServeProcess, args: tuple[str, ...], complaint: str
) -> None:
    """Bad usage is reported on stderr with exit status 2, before anything is sent."""
    result = tether("call", demo_server.address("tcp"), *args)
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr


def test_tls_verifies_the_server(tether: Run, demo_server: ServeProcess, certs: Certs) -> None:
    """Over tls:// the call succeeds with --cacert and fails (UNAVAILABLE) without it."""
    url = demo_server.address("tls")
    ok = tether("call", url, UNARY, "--data", '{"data": "eA=="}', "--cacert", certs.ca)
    assert ok.returncode == 0, ok.stderr
    assert lines(ok.stdout)[0]["data"] == "eA=="
    untrusted = tether("call", url, UNARY, "--data", "{}")
    assert untrusted.returncode == 1
    assert untrusted.stderr.startswith("UNAVAILABLE:"), untrusted.stderr


def test_mtls_requires_a_client_certificate(
    tether: Run, mtls_server: ServeProcess, certs: Certs
) -> None:
    """A server with --cacert refuses a client without a certificate and serves one with it."""
    url = mtls_server.address("tls")
    refused = tether("call", url, UNARY, "--data", "{}", "--cacert", certs.ca, "--timeout", "10")
    assert refused.returncode == 1
    assert refused.stderr.startswith("UNAVAILABLE:"), refused.stderr
    accepted = tether(
        "call",
        url,
        UNARY,
        "--data",
        '{"data": "eA=="}',
        "--cacert",
        certs.ca,
        "--cert",
        certs.client_cert,
        "--key",
        certs.client_key,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert lines(accepted.stdout)[0]["data"] == "eA=="
