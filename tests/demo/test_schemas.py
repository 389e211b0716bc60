"""The demo schemas: the checked-in protoc output, the Thrift module and their re-exports."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import tether.demo
from tether.demo import echo_pb2, schemas
from tether.demo._thrift import echo_thrift

DEMO_DIR = Path(tether.demo.__file__).parent
REPO_ROOT = Path(__file__).parents[2]
GENERATED = ("echo_pb2.py", "echo_pb2.pyi")


def run_protoc(out: Path, *extra: str) -> None:
    """Run the protoc bundled with grpcio-tools exactly as the files were generated."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    args = ["protoc", f"-I{DEMO_DIR}", *extra, str(DEMO_DIR / "echo.proto")]
    assert protoc.main(args) == 0


def gencode_version(source: str) -> tuple[int, int, int]:
    """The protobuf version a generated ``_pb2.py`` demands of the runtime."""
    match = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),",
        source,
    )
    assert match, "no runtime version guard in the generated code"
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def test_generated_code_matches_a_fresh_protoc_run(tmp_path: Path) -> None:
    """echo_pb2.py / .pyi are byte-identical to what the installed protoc generates now."""
    run_protoc(tmp_path, f"--python_out={tmp_path}", f"--pyi_out={tmp_path}")
    committed = (DEMO_DIR / "echo_pb2.py").read_text()
    fresh = (tmp_path / "echo_pb2.py").read_text()
    if gencode_version(fresh) != gencode_version(committed):
        pytest.skip(
            f"the installed protoc generates for protobuf {gencode_version(fresh)}, "
            f"the checked-in code for {gencode_version(committed)}; "
            "test_generated_descriptor_matches_the_proto still compares the schema"
        )
    for name in GENERATED:
        assert (DEMO_DIR / name).read_text() == (tmp_path / name).read_text(), (
            f"{name} is stale: regenerate with python -m grpc_tools.protoc -I src/tether/demo "
            "--python_out=src/tether/demo --pyi_out=src/tether/demo src/tether/demo/echo.proto"
        )


def test_generated_descriptor_matches_the_proto(tmp_path: Path) -> None:
    """The schema compiled into echo_pb2 is echo.proto's, whatever protoc version ran."""
    run_protoc(tmp_path, f"--descriptor_set_out={tmp_path / 'echo.pb'}")
    fresh = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "echo.pb").read_bytes())
    committed = descriptor_pb2.FileDescriptorProto.FromString(echo_pb2.DESCRIPTOR.serialized_pb)
    (fresh_file,) = fresh.file
    # protoc fills in json_name for descriptor sets but leaves it out of generated code.
    pending = list(fresh_file.message_type)
    while pending:
        message = pending.pop()
        for message_field in message.field:
            message_field.ClearField("json_name")
        pending.extend(message.nested_type)
    assert fresh_file == committed


def test_protobuf_floor_covers_the_generated_code() -> None:
    """pyproject's protobuf floor is at least the version the generated code demands."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    floors = [
        re.fullmatch(r"protobuf\s*>=\s*([\d.]+)", dep.split(";")[0].strip())
        for dep in pyproject["project"]["dependencies"]
    ]
    floor = next(match.group(1) for match in floors if match)
    numbers = [int(part) for part in floor.split(".")]
    assert tuple([*numbers, 0, 0][:3]) >= gencode_version((DEMO_DIR / "echo_pb2.py").read_text())


def test_protobuf_messages() -> None:
    """EchoRequest and EchoReply belong to package tether.demo with the fields of echo.proto."""
    assert schemas.EchoRequest is echo_pb2.EchoRequest
    assert schemas.EchoReply is echo_pb2.EchoReply
    assert schemas.EchoRequest.DESCRIPTOR.full_name == "tether.demo.EchoRequest"
    assert [f.name for f in schemas.EchoRequest.DESCRIPTOR.fields] == [
        "data",
        "repeat",
        "delay_ms",
        "fail",
    ]
    assert [f.name for f in schemas.EchoReply.DESCRIPTOR.fields] == ["data", "metadata"]


def test_service_names() -> None:
    """The service constants match the schemas: tether.demo.Echo and Echo."""
    assert schemas.PROTO_SERVICE == "tether.demo.Echo"
    assert echo_pb2.DESCRIPTOR.services_by_name["Echo"].full_name == schemas.PROTO_SERVICE
    assert schemas.THRIFT_SERVICE == "Echo"
    assert schemas.echo_thrift.Echo.__name__ == schemas.THRIFT_SERVICE


def test_thrift_module() -> None:
    """echo.thrift loads as module echo_thrift with its structs, exception and service."""
    assert schemas.echo_thrift is echo_thrift
    assert echo_thrift.__name__ == "echo_thrift"
    assert echo_thrift.Echo.thrift_services == ["Unary", "Notify"]
    assert issubclass(echo_thrift.EchoError, Exception)
    assert echo_thrift.Echo.Notify_result.oneway is True
    assert echo_thrift.Echo.Unary_result.oneway is False


def test_thrift_idl_defaults() -> None:
    """A new EchoRequest has the IDL defaults: repeat 1, delay_ms 0, fail ""; data unset."""
    request = echo_thrift.EchoRequest()
    assert (request.data, request.repeat, request.delay_ms, request.fail) == (None, 1, 0, "")
    assert (echo_thrift.EchoReply().data, echo_thrift.EchoReply().metadata) == (None, None)


def stub_classes() -> dict[str, ast.ClassDef]:
    """Every class in _thrift.pyi by dotted name below ``echo_thrift``."""
    tree = ast.parse((DEMO_DIR / "_thrift.pyi").read_text())
    found: dict[str, ast.ClassDef] = {}

    def visit(node: ast.ClassDef, prefix: str) -> None:
        for child in node.body:
            if isinstance(child, ast.ClassDef):
                found[prefix + child.name] = child
                visit(child, f"{prefix}{child.name}.")

    (root,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "echo_thrift")
    visit(root, "")
    return found


def test_thrift_stub_matches_the_idl() -> None:
    """_thrift.pyi declares exactly the IDL's structs, fields and defaults."""
    stubs = stub_classes()
    runtime = {
        "EchoRequest": echo_thrift.EchoRequest,
        "EchoReply": echo_thrift.EchoReply,
        "EchoError": echo_thrift.EchoError,
        **{
            f"Echo.{name}": getattr(echo_thrift.Echo, name)
            for name in dir(echo_thrift.Echo)
            if name.endswith(("_args", "_result"))
        },
    }
    assert set(stubs) == {*runtime, "Echo"}
    for name, cls in runtime.items():
        stub = stubs[name]
        fields = [
            n.target.id
            for n in stub.body
            if isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)
            and "ClassVar" not in ast.unparse(n.annotation)
        ]
        init = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        defaults = [ast.literal_eval(d) for d in init.args.defaults]
        assert sorted(fields) == sorted(spec[1] for spec in cls.thrift_spec.values()), name
        assert list(zip([a.arg for a in init.args.args[1:]], defaults, strict=True)) == [
            tuple(pair) for pair in cls.default_spec
        ], name
