"""The real Kitex captures (../shared/vectors/kitex), replayed against tether both ways.

Server side: each captured request stream is sent over TCP to a tether server serving the
captured IDL; its reply must equal Kitex's. Byte-exact where Go's map order cannot change
the bytes (every TTHeader key-value block with at most one entry, and every frame without
TTHeader); otherwise the TTHeader fields are compared as sets and the payload byte-exact.

Client side: tether's client makes the same call (same method, message, metainfo,
protocol, timeout) to a fake server that answers with Kitex's captured reply. Its request
must decode, under the same rules, to the same call as Kitex's (header sets compared,
except the caller/destination names Kitex takes from its own configuration), and the
client must report what the Kitex client reported (result, error, backward values).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tether
from tether import metainfo
from tether.encoding import ThriftStructCodec
from tether.framing import CallStarted, Message, Role
from tether.framing.thrift import ThriftCodec, classify, decode_ttheader
from tether.thrift import ThriftStub

from .kitex_peer import PBEchoRequest, PBEchoResponse, kitex_services, load_vector, vector_files

CASES = vector_files()
pytestmark = pytest.mark.skipif(not CASES, reason="../shared/vectors/kitex is not present")
CLIENT_CASES = [p for p in CASES if load_vector(p)["client_options"].get("cli_args")]
#: Int keys whose values Kitex takes from its own configuration, not from the call.
_CONFIGURED = {":from-service", ":from-method", ":to-service"}
_TTHEADER_MAGIC = b"\x10\x00"
#: The capture peer's ``-seq`` default (its requests without ``-seq`` carry 42).
DEFAULT_SEQ = "42"


@pytest.fixture
async def kitex_like_server(tmp_path: Path) -> AsyncIterator[tuple[int, Any]]:
    """A tether server with the captured peer's services; yields (port, thrift handler)."""
    services, handler, _ = kitex_services(tmp_path)
    server = tether.Server(services)
    await server.start("tcp://127.0.0.1:0")
    try:
        yield int(server.addresses[0].rsplit(":", 1)[1]), handler
    finally:
        server.close()
        await server.wait_closed()


def _frames(data: bytes) -> list[bytes]:
    """Split length-prefixed frames (TTHeader, Framed); a Buffered stream stays whole."""
    if len(data) < 8 or (
        data[4:6] != _TTHEADER_MAGIC and data[4:6] not in (b"\x80\x01", b"\x90\x01")
    ):
        return [data]
    frames = []
    while data:
        size = int.from_bytes(data[:4], "big") + 4
        frames.append(data[:size])
        data = data[size:]
    return frames


def _value(data: bytes, pos: int, ttype: int) -> tuple[Any, int]:
    """One Thrift-binary value; structs become {field id: value} (order-insensitive)."""
    fixed = {2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8}
    if ttype in fixed:
        return data[pos : pos + fixed[ttype]], pos + fixed[ttype]
    if ttype == 11:
        size = int.from_bytes(data[pos : pos + 4], "big")
        return data[pos + 4 : pos + 4 + size], pos + 4 + size
    if ttype == 12:
        fields = {}
        while data[pos] != 0:
            ftype, fid = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
            fields[fid], pos = _value(data, pos + 3, ftype)
        return fields, pos + 1
    if ttype == 13:
        ktype, vtype, count = (
            data[pos],
            data[pos + 1],
            int.from_bytes(data[pos + 2 : pos + 6], "big"),
        )
        pos += 6
        entries = {}
        for _ in range(count):
            key, pos = _value(data, pos, ktype)
            entries[key], pos = _value(data, pos, vtype)
        return entries, pos
    etype, count = data[pos], int.from_bytes(data[pos + 1 : pos + 5], "big")
    pos += 5
    items = []
    for _ in range(count):
        item, pos = _value(data, pos, etype)
        items.append(item)
    return items, pos


def _assert_same_thrift_message(want: bytes, got: bytes) -> None:
    """Same envelope bytes and the same struct, fields in any order (Kitex's fast codec
    writes them in its own order, e.g. EchoResponse's field 2 before field 1)."""
    if want.hex() == got.hex() or want[:4] != b"\x80\x01\x00\x02":
        assert got.hex() == want.hex()
        return
    start = 12 + int.from_bytes(want[4:8], "big")
    assert got[:start] == want[:start]
    want_struct, want_end = _value(want, start, 12)
    got_struct, got_end = _value(got, start, 12)
    assert (got_struct, got_end) == (want_struct, want_end)
    assert got_end == len(got)


def _assert_same_reply(expected: bytes, actual: bytes) -> None:
    expected_frames, actual_frames = _frames(expected), _frames(actual)
    assert len(actual_frames) == len(expected_frames)
    for want, got in zip(expected_frames, actual_frames, strict=True):
        if want[4:6] != _TTHEADER_MAGIC:
            if want[:4] == b"\x80\x01\x00\x02":  # Buffered
                _assert_same_thrift_message(want, got)
            else:  # Framed: same length prefix, then the message
                assert got[:4] == want[:4]
                _assert_same_thrift_message(want[4:], got[4:])
            continue
        want_header, want_payload = decode_ttheader(memoryview(want), 0, len(want))
        got_header, got_payload = decode_ttheader(memoryview(got), 0, len(got))
        assert (got_header.flags, got_header.seq_id, got_header.protocol_id) == (
            want_header.flags,
            want_header.seq_id,
            want_header.protocol_id,
        )
        assert got_header.str_info == want_header.str_info
        assert got_header.int_info == want_header.int_info
        assert got[:4] == want[:4]
        _assert_same_thrift_message(want[want_payload:], got[got_payload:])
        if len(want_header.str_info) <= 1 and len(want_header.int_info) <= 1:
            # No map order to vary: the header bytes are fixed.
            assert got[:got_payload].hex() == want[:want_payload].hex()


async def _exchange(port: int, request: bytes, expected: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if expected == 0:  # oneway: nothing comes back; our EOF lets the server close
            writer.write_eof()
            return await asyncio.wait_for(reader.read(), 10)
        return await asyncio.wait_for(reader.readexactly(expected), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_tether_server_answers_the_captured_request_as_kitex_did(
    path: Path, kitex_like_server: tuple[int, Any]
) -> None:
    """Kitex's request bytes get Kitex's reply bytes from a tether server."""
    port, handler = kitex_like_server
    vector = load_vector(path)
    expected = bytes.fromhex(vector["response_hex"])
    reply = await _exchange(port, bytes.fromhex(vector["request_hex"]), len(expected))
    _assert_same_reply(expected, reply)
    if not expected:
        for _ in range(500):
            if handler.pings:
                break
            await asyncio.sleep(0.01)
        assert handler.pings == ["fire-and-forget"]


# -- tether's client against Kitex's replies ---------------------------------------------


def _options(vector: dict[str, Any]) -> dict[str, str]:
    args = vector["client_options"]["cli_args"]
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        key = args[i].lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            value = args[i + 1]
            i += 1
        else:
            value = "true"
        options[key] = value
        i += 1
    return options


def _pairs(text: str | None) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",")) if text else {}


def _protocol(options: dict[str, str]) -> str:
    if options["idl"] == "pb":
        return "kitex_protobuf"  # a Kitex protobuf client always sends TTHeaderFramed
    if options["proto"] == "ttheader" and options.get("reset-proto") == "false":
        return "ttheader_framed"  # Kitex ORs TTHeader onto its Framed default
    return options["proto"]


def _decode_request(data: bytes) -> tuple[CallStarted, bytes]:
    codec = ThriftCodec(Role.SERVER)
    events = codec.receive_data(data)
    call = next(e for e in events if isinstance(e, CallStarted))
    message = next(e for e in events if isinstance(e, Message))
    return call, message.data


class _FakeKitexServer:
    """Answers the first request of each connection with Kitex's captured reply bytes."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        codec = ThriftCodec(Role.SERVER)
        received = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
                if any(isinstance(e, Message) for e in codec.receive_data(chunk)):
                    self.requests.append(received)
                    writer.write(self.reply)
                    await writer.drain()
                    received = b""
        finally:
            writer.close()


async def _tether_call(vector: dict[str, Any], module: Any, port: int) -> dict[str, Any]:
    """Make the capture's call with tether's client; report it like the Kitex client."""
    options = _options(vector)
    outcome: dict[str, Any] = {}
    timeout = int(options.get("timeout", "3000")) / 1000 or None
    async with tether.Client(f"tcp://127.0.0.1:{port}", protocol=_protocol(options)) as client:
        with (
            metainfo.values(_pairs(options.get("meta")), persistent=_pairs(options.get("pmeta"))),
            metainfo.backward_values() as backward,
        ):
            try:
                if options["idl"] == "pb":
                    request = PBEchoRequest(
                        msg=options["msg"], seq=int(options.get("seq", DEFAULT_SEQ))
                    )
                    reply = await client.unary(
                        "pbecho.EchoPB/Echo", request, response_type=PBEchoResponse, timeout=timeout
                    )
                    outcome["result"] = {"msg": reply.msg, "seq": reply.seq}
                else:
                    stub = ThriftStub(client, module.Echo)
                    method = options["method"]
                    if method == "echoStruct":
                        request = module.EchoRequest(
                            msg=options["msg"],
                            seq=int(options.get("seq", DEFAULT_SEQ)),
                            extra=_pairs(options.get("extra")),
                        )
                        reply = await stub.echoStruct(request, timeout=timeout)
                        outcome["result"] = {"msg": reply.msg, "seq": reply.seq}
                    else:
                        outcome["result"] = await getattr(stub, method)(
                            options["msg"], timeout=timeout
                        )
            except tether.BizStatusError as exc:
                outcome["biz"] = (exc.code, exc.message, exc.extra or None)
            except tether.ThriftApplicationError as exc:
                outcome["app_error"] = (exc.type, exc.message)
            except tether.StatusError as exc:  # client.unary() (protobuf) raises it plain
                outcome["app_error"] = (int(dict(exc.trailers)[":tapplication-type"]), exc.message)
            except module.EchoError as exc:
                outcome["declared"] = (exc.code, exc.message)
    outcome["backward"] = backward or None
    return outcome


def _kitex_outcome(vector: dict[str, Any]) -> dict[str, Any]:
    result = vector["client_result"]
    outcome: dict[str, Any] = {"backward": result.get("backward")}
    error = result.get("error")
    if result.get("error_type") == "*kerrors.BizStatusError":
        outcome["biz"] = (result["biz_status"], result["biz_message"], result["biz_extra"])
    elif result.get("error_type") == "*echo.EchoError":
        outcome["declared"] = (7, "thrown by server")
    elif error:
        outcome["app_error"] = (6, error.removeprefix("remote or network error[remote]: "))
    elif "result" in result:
        outcome["result"] = result["result"]
    return outcome


@pytest.mark.parametrize("path", CLIENT_CASES, ids=[p.stem for p in CLIENT_CASES])
async def test_tether_client_sends_what_kitex_sends_and_reads_its_reply(
    path: Path, tmp_path: Path
) -> None:
    """tether's request decodes to Kitex's call; Kitex's reply reads as Kitex read it."""
    vector = load_vector(path)
    options = _options(vector)
    if options.get("no-meta-handler") == "true":
        pytest.skip("tether's client always runs the built-in TTHeader MetaHandler")
    _, _, module = kitex_services(tmp_path)
    fake = _FakeKitexServer(bytes.fromhex(vector["response_hex"]))
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        outcome = await _tether_call(vector, module, port)
        for _ in range(500):  # a oneway call returns before the server has read it
            if fake.requests:
                break
            await asyncio.sleep(0.01)
    expected = _kitex_outcome(vector)
    if options.get("method") == "ping":
        expected.pop("result", None)
        outcome.pop("result", None)
    assert outcome == expected

    kitex_request = bytes.fromhex(vector["request_hex"])
    (ours,) = fake.requests
    assert classify(ours[:64]) == classify(kitex_request[:64])
    want_call, want_data = _decode_request(kitex_request)
    got_call, got_data = _decode_request(ours)
    for field in ("service", "method", "timeout", "encoding", "oneway"):
        assert getattr(got_call, field) == getattr(want_call, field), field
    assert {k: v for k, v in got_call.metadata if k not in _CONFIGURED} == {
        k: v for k, v in want_call.metadata if k not in _CONFIGURED
    }
    if options["idl"] == "pb":
        assert PBEchoRequest.FromString(got_data) == PBEchoRequest.FromString(want_data)
    else:
        args = ThriftStructCodec(getattr(module.Echo, f"{options['method']}_args"))
        assert args.decode(got_data) == args.decode(want_data)
