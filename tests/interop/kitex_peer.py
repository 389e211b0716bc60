"""The service the Kitex captures were taken against, served by tether.

The captures' peer (``idl`` in every vector file) has a Thrift ``Echo`` (``echo``,
``echoStruct``, oneway ``ping``) and a protobuf ``pbecho.EchoPB`` (``Echo``). Its
behaviour, read from the captured replies: ``echo`` returns ``msg``; ``echoStruct``
returns ``{msg, seq}``; the message ``throw`` raises the declared ``EchoError{code=7,
message="thrown by server"}``, ``error`` a plain error (``handler error`` / ``pb handler
error``), ``bizerr`` a biz error (1001 ``biz failure`` extra ``{"k":"v"}`` / 1002 ``pb biz
failure``); ``echo`` and ``EchoPB.Echo`` send the backward value
``srv_backward=from-kitex-server``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

import tether
from tether import metainfo
from tether.thrift import load, thrift_service

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "kitex"


def vector_files() -> list[Path]:
    """Every captured Thrift / Kitex-Protobuf case (gRPC ones belong to the gRPC work)."""
    if not VECTORS.is_dir():
        return []
    return sorted(p for p in VECTORS.glob("*.json") if not p.name.startswith(("_", "grpc_")))


def load_vector(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _pb_messages() -> tuple[Any, Any]:
    """``pbecho.EchoRequest`` / ``EchoResponse`` ({1: string msg, 2: int32 seq}), built
    from a descriptor (the capture's echo.proto), no protoc needed."""
    file = descriptor_pb2.FileDescriptorProto(name="kitex_pbecho.proto", package="pbecho")
    file.syntax = "proto3"
    for name in ("EchoRequest", "EchoResponse"):
        message = file.message_type.add(name=name)
        message.field.add(name="msg", number=1, type=9, label=1)  # string
        message.field.add(name="seq", number=2, type=5, label=1)  # int32
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        GetMessageClass(pool.FindMessageTypeByName("pbecho.EchoRequest")),
        GetMessageClass(pool.FindMessageTypeByName("pbecho.EchoResponse")),
    )


PBEchoRequest, PBEchoResponse = _pb_messages()


class KitexEchoHandler:
    """The captured peer's thrift ``Echo``."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.pings: list[str] = []

    async def echo(self, msg: str) -> str:
        metainfo.send_backward("srv_backward", "from-kitex-server")
        if msg == "error":
            raise RuntimeError("handler error")
        if msg == "bizerr":
            raise tether.BizStatusError(1001, "biz failure", {"k": "v"})
        return msg

    async def echoStruct(self, req: Any) -> Any:
        if req.msg == "throw":
            raise self._module.EchoError(code=7, message="thrown by server")
        return self._module.EchoResponse(msg=req.msg, seq=req.seq)

    async def ping(self, msg: str) -> None:
        self.pings.append(msg)


def pb_service() -> tether.Service:
    """The captured peer's ``pbecho.EchoPB``."""
    service = tether.Service("pbecho.EchoPB")

    @service.unary(request=PBEchoRequest, response=PBEchoResponse)
    async def Echo(request: Any) -> Any:
        metainfo.send_backward("srv_backward", "from-kitex-server")
        if request.msg == "error":
            raise RuntimeError("pb handler error")
        if request.msg == "bizerr":
            raise tether.BizStatusError(1002, "pb biz failure")
        return PBEchoResponse(msg=request.msg, seq=request.seq)

    return service


def kitex_services(idl_dir: Path) -> tuple[list[tether.Service], KitexEchoHandler, Any]:
    """Both services, the thrift handler (to see oneway pings) and the thrift module;
    the capture's echo.thrift is written to ``idl_dir``."""
    idl = idl_dir / "kitex_echo.thrift"
    idl.write_text(load_vector(vector_files()[0])["idl"]["echo.thrift"])
    module = load(idl)
    handler = KitexEchoHandler(module)
    return [thrift_service(module.Echo, handler), pb_service()], handler, module
