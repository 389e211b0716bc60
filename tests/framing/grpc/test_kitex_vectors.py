"""Real Kitex gRPC byte streams (../shared/vectors/kitex/grpc_*.json) decode as captured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether import Status
from tether.framing import (
    CallStarted,
    Detection,
    EndOfStream,
    Headers,
    Message,
    Ping,
    Role,
    Trailers,
)
from tether.framing.grpc import GrpcCodec, detect_grpc

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "kitex"
CASES = sorted(VECTORS.glob("grpc_*.json")) if VECTORS.is_dir() else []

pytestmark = pytest.mark.skipif(not CASES, reason=f"no Kitex gRPC captures in {VECTORS}")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def frames(case: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    return [f for f in case["connections"][0][f"decoded_{direction}"] if "type" in f]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_kitex_request_stream_decodes(path: Path) -> None:
    """Our server turns the Kitex client's bytes into the call and messages captured."""
    case = load(path)
    data = bytes.fromhex(case["request_hex"])
    assert detect_grpc(data[:24]) is Detection.MATCH
    server = GrpcCodec(Role.SERVER)
    events = server.receive_data(data)
    c2s = frames(case, "c2s")
    (headers_frame,) = [f for f in c2s if f["type"] == "HEADERS"]
    headers = dict(headers_frame["headers"])
    (call,) = [e for e in events if isinstance(e, CallStarted)]
    assert f"/{call.service}/{call.method}" == headers[":path"]
    assert headers[":authority"] == "kitexpeer.server"  # Kitex: the service name
    if "grpc-timeout" in headers:
        assert headers["grpc-timeout"].endswith("u")
        assert call.timeout == pytest.approx(int(headers["grpc-timeout"][:-1]) / 1e6)
    else:
        assert call.timeout is None
    expected_metadata = [
        (k, v)
        for k, v in headers_frame["headers"]
        if k[0] != ":" and k not in ("te", "content-type", "grpc-timeout")
    ]
    assert list(call.metadata) == expected_metadata
    sent = [m["message_hex"] for f in c2s if f["type"] == "DATA" for m in f["grpc_messages"]]
    got = [e.data.hex() for e in events if isinstance(e, Message)]
    assert got == sent
    ends = [e for e in events if isinstance(e, EndOfStream)]
    last = [e for e in events if isinstance(e, Message) and e.end_stream]
    assert len(ends) + len(last) == 1
    assert not server.has_data_to_send() or server.data_to_send()  # replies are queued only


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_kitex_response_stream_decodes(path: Path) -> None:
    """Our client turns the Kitex server's bytes into headers, messages and trailers."""
    case = load(path)
    client = GrpcCodec(Role.CLIENT)
    sid = client.next_stream_id()
    client.send(CallStarted(stream_id=sid, service="pbecho.EchoPB", method="Echo"))
    client.data_to_send()
    events = client.receive_data(bytes.fromhex(case["response_hex"]))
    s2c = frames(case, "s2c")
    assert Ping(payload=bytes.fromhex(s2c[3]["opaque_hex"])) in events  # Kitex's BDP ping
    header_frames = [f for f in s2c if f["type"] == "HEADERS"]
    final = dict(header_frames[-1]["headers"])
    sent = [m["message_hex"] for f in s2c if f["type"] == "DATA" for m in f["grpc_messages"]]
    got = [e.data.hex() for e in events if isinstance(e, Message)]
    assert got == sent
    (trailers,) = [e for e in events if isinstance(e, Trailers)]
    assert trailers.status is Status(int(final["grpc-status"]))
    assert trailers.message == final.get("grpc-message", "")
    extra = [
        (k, v)
        for k, v in header_frames[-1]["headers"]
        if k[0] != ":" and not k.startswith(("grpc-", "content-type"))
    ]
    assert list(trailers.metadata) == extra
    if len(header_frames) == 2:
        assert [e for e in events if isinstance(e, Headers)] == [Headers(stream_id=sid)]
    else:  # Trailers-Only
        assert not [e for e in events if isinstance(e, Headers)]


def test_kitex_bizerr_carries_biz_status() -> None:
    """Kitex's business error arrives as INTERNAL with biz-status trailing metadata."""
    path = VECTORS / "grpc_pb_bizerr.json"
    if not path.exists():
        pytest.skip("grpc_pb_bizerr capture absent")
    client = GrpcCodec(Role.CLIENT)
    client.send(
        CallStarted(stream_id=client.next_stream_id(), service="pbecho.EchoPB", method="Echo")
    )
    events = client.receive_data(bytes.fromhex(load(path)["response_hex"]))
    (trailers,) = [e for e in events if isinstance(e, Trailers)]
    assert trailers.status is Status.INTERNAL
    assert dict(trailers.metadata) == {"biz-status": "1002"}
