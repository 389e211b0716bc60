"""A real Kitex gRPC client's captured bytes, replayed to a tether server: the call
reaches a service built from the Kitex IDL, its metainfo headers map to what the Kitex
server saw, and the reply is what the Kitex client printed."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import hpack
import pytest

import tether
import tether.grpc

VECTOR = (
    Path(__file__).resolve().parents[3] / "shared" / "vectors" / "kitex" / "grpc_pb_echo_meta.json"
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not VECTOR.is_file(), reason=f"no Kitex capture at {VECTOR}"),
]


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    return json.loads(VECTOR.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def kitex_pb2(case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The capture's echo.proto compiled by protoc (as kitex_echo.proto: the demo already
    registered a file named echo.proto in protobuf's descriptor pool)."""
    from grpc_tools import protoc

    folder = tmp_path_factory.mktemp("kitex")
    (folder / "kitex_echo.proto").write_text(case["idl"]["echo.proto"])
    assert protoc.main(["protoc", f"-I{folder}", f"--python_out={folder}", "kitex_echo.proto"]) == 0
    spec = importlib.util.spec_from_file_location("kitex_echo_pb2", folder / "kitex_echo_pb2.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """HTTP/2 frames as (type, flags, stream id, payload)."""
    frames, offset = [], 0
    while offset + 9 <= len(data):
        high, low, kind, flags, stream = struct.unpack_from(">BHBBL", data, offset)
        length = (high << 16) | low
        frames.append((kind, flags, stream & 0x7FFFFFFF, data[offset + 9 : offset + 9 + length]))
        offset += 9 + length
    return frames


async def test_kitex_client_bytes_reach_a_tether_service(
    case: dict[str, Any], kitex_pb2: ModuleType
) -> None:
    """Kitex → tether: metainfo K1/K2 transient and PK persistent, reply hello/42."""
    seen: dict[str, Any] = {}

    class EchoPB:
        async def Echo(self, request: Any, ctx: tether.ServerContext) -> Any:
            pairs = [(k, v) for k in ctx.metadata for v in ctx.metadata.getall(k)]
            seen["metainfo"] = tether.grpc.grpc_headers_to_metainfo(pairs)
            seen["source"] = ctx.metadata.get("source-service")
            return kitex_pb2.EchoResponse(msg=request.msg, seq=request.seq)

    server = tether.Server([tether.grpc.service_from_pb2(kitex_pb2, "EchoPB", EchoPB())])
    await server.start("tcp://127.0.0.1:0")
    try:
        host, port = server.addresses[0].removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(bytes.fromhex(case["request_hex"]))
        await writer.drain()
        received = b""
        decoder = hpack.Decoder()
        trailers: dict[str, str] = {}
        data = b""
        while "grpc-status" not in trailers:
            chunk = await reader.read(65536)
            assert chunk, "the server closed before the call's trailers"
            received += chunk
            data, trailers = b"", {}
            decoder = hpack.Decoder()
            for kind, _flags, stream, payload in _frames(received):
                if stream == 1 and kind == 0:  # DATA
                    data += payload
                elif stream == 1 and kind == 1:  # HEADERS (no padding/priority from us)
                    trailers.update(dict(decoder.decode(payload)))
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    observed = case["server_observed"][0]
    assert seen["metainfo"] == (observed["transient"], observed["persistent"])
    assert seen["source"] == observed["from_service"]
    assert trailers["grpc-status"] == "0"
    flag, length = struct.unpack_from(">BL", data)
    reply = kitex_pb2.EchoResponse.FromString(data[5 : 5 + length])
    assert flag == 0
    assert {"msg": reply.msg, "seq": reply.seq} == case["client_result"]["result"]
