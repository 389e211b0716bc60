"""``tether call --protocol grpc`` against a grpcio server, with a ``--proto-module``
generated at test time (no reflection: the method and its types come from the module)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

pytestmark = pytest.mark.interop

GREET_PROTO = """\
syntax = "proto3";
package clitest;
message HelloRequest { string name = 1; int32 count = 2; }
message HelloReply { string message = 1; }
service Greeter {
  rpc Hello(HelloRequest) returns (HelloReply);
  rpc Count(HelloRequest) returns (stream HelloReply);
}
"""


@pytest.fixture(scope="module")
def greet_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """``greet_pb2.py`` compiled by grpcio-tools' protoc into a temporary folder."""
    from grpc_tools import protoc

    folder = tmp_path_factory.mktemp("proto")
    (folder / "greet.proto").write_text(GREET_PROTO)
    assert protoc.main(["protoc", f"-I{folder}", f"--python_out={folder}", "greet.proto"]) == 0
    spec = importlib.util.spec_from_file_location("greet_pb2", folder / "greet_pb2.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grpcio_server(greet_pb2: ModuleType) -> Iterator[str]:
    """A threaded grpcio server for clitest.Greeter; yields ``host:port``."""

    def hello(request: Any, context: grpc.ServicerContext) -> Any:
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name required")
        return greet_pb2.HelloReply(message=f"hello {request.name}")

    def count(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for i in range(request.count):
            yield greet_pb2.HelloReply(message=f"{request.name} {i}")

    codec = {
        "request_deserializer": greet_pb2.HelloRequest.FromString,
        "response_serializer": greet_pb2.HelloReply.SerializeToString,
    }
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "clitest.Greeter",
                {
                    "Hello": grpc.unary_unary_rpc_method_handler(hello, **codec),
                    "Count": grpc.unary_stream_rpc_method_handler(count, **codec),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def tether_call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``tether call ARGS...`` (``python -m tether``) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "tether", "call", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_unary_through_a_proto_module_file(grpcio_server: str, greet_pb2: ModuleType) -> None:
    """A .py file path as --proto-module gives the method's types; JSON in, JSON out."""
    result = tether_call(
        f"tcp://{grpcio_server}",
        "clitest.Greeter/Hello",
        "--protocol",
        "grpc",
        "--proto-module",
        str(greet_pb2.__file__),
        "--data",
        '{"name": "ada"}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "hello ada"}


def test_server_stream_by_dotted_module_name(grpcio_server: str, greet_pb2: ModuleType) -> None:
    """A dotted module name importable from PYTHONPATH works too; each reply is a line."""
    folder = str(Path(str(greet_pb2.__file__)).parent)
    result = tether_call(
        f"tcp://{grpcio_server}",
        "/clitest.Greeter/Count",
        "--protocol",
        "grpc",
        "--proto-module",
        "greet_pb2",
        "--data",
        '{"name": "n", "count": 3}',
        env={"PYTHONPATH": folder},
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"message": "n 0"},
        {"message": "n 1"},
        {"message": "n 2"},
    ]


def test_grpc_status_is_reported(grpcio_server: str, greet_pb2: ModuleType) -> None:
    """A grpcio abort prints STATUS: message and exits 1."""
    result = tether_call(
        f"tcp://{grpcio_server}",
        "clitest.Greeter/Hello",
        "--protocol",
        "grpc",
        "--proto-module",
        str(greet_pb2.__file__),
        "--data",
        "{}",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "INVALID_ARGUMENT: name required"


def test_unloadable_proto_module_is_a_usage_error(tmp_path: Path) -> None:
    """A missing file or a module without a descriptor exits 2 with the reason."""
    missing = tether_call(
        "tcp://127.0.0.1:1", "x.Y/Z", "--proto-module", str(tmp_path / "nope_pb2.py")
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    not_pb2 = tether_call("tcp://127.0.0.1:1", "x.Y/Z", "--proto-module", "json")
    assert not_pb2.returncode == 2
    assert "not a protoc-generated" in not_pb2.stderr
