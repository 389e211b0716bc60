"""Byte vectors for the native protocol, written by hand from docs/protocol.md.

Each vector is checked both ways: the codec must produce exactly these bytes, and must
decode them into exactly these events. The same vectors appear in docs/protocol.md.
"""

from __future__ import annotations

import pytest

from tests.framing.native_helpers import client_after_preface, server_after_preface
from tether import Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    Detection,
    EndOfStream,
    GoAway,
    Headers,
    Message,
    NativeCodec,
    Ping,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
    detect_framing,
    get_framing,
)
from tether.framing._native import detect_native


def h(text: str) -> bytes:
    """Hex with spaces, newlines and ``|`` separators → bytes."""
    return bytes.fromhex(text.replace("|", " "))


CLIENT_PREFACE = h(
    "54 45 54 48 45 52 01 00"  # "TETHER", version 1, reserved 0
    "00 00 00 18 | 00 | 00 | 00 00 00 00"  # SETTINGS, 24 bytes, no flags, stream 0
    "00 01 00 40 00 00"  # MAX_FRAME_SIZE 4 MiB
    "00 02 00 40 00 00"  # INITIAL_WINDOW 4 MiB
    "00 03 00 00 03 e8"  # MAX_CONCURRENT_STREAMS 1000
    "00 04 00 01 00 00"  # MAX_METADATA_SIZE 64 KiB
)

OPEN_WITH_DEADLINE = h(
    "00 00 00 3d | 01 | 04 | 00 00 00 01"  # OPEN, 61 bytes, HAS_DEADLINE, stream 1
    "00 09 65 63 68 6f 2e 45 63 68 6f"  # service "echo.Echo"
    "00 03 53 61 79"  # method "Say"
    "05 70 72 6f 74 6f"  # encoding "proto"
    "00 00 00 00 00 16 e3 60"  # deadline: 1_500_000 microseconds
    "00 02"  # two metadata pairs
    "00 04 78 2d 69 64 | 00 00 00 02 34 32"  # "x-id": "42"
    "00 09 74 72 61 63 65 2d 62 69 6e | 00 00 00 02 01 02"  # "trace-bin": 01 02
)
OPEN_EVENT = CallStarted(
    stream_id=1,
    service="echo.Echo",
    method="Say",
    metadata=(("x-id", "42"), ("trace-bin", b"\x01\x02")),
    timeout=1.5,
    encoding="proto",
)

DATA_CHUNKS = (
    h("00 00 04 00 | 03 | 00 | 00 00 00 01")  # DATA, 1024 bytes, no flags
    + b"a" * 1024
    + h("00 00 04 00 | 03 | 00 | 00 00 00 01")
    + b"a" * 1024
    + h("00 00 01 c4 | 03 | 03 | 00 00 00 01")  # 452 bytes, END_MESSAGE | END_STREAM
    + b"a" * 452
)

#: OPEN stream 1, service "s", method "m", no encoding, no metadata.
MINIMAL_OPEN = h("00 00 00 09 | 01 | 00 | 00 00 00 01 | 00 01 73 | 00 01 6d | 00 | 00 00")
HEADERS_FRAME = h("00 00 00 0a | 02 | 00 | 00 00 00 01 | 00 01 00 01 6b 00 00 00 01 76")

END_WITH_TRAILERS = h(
    "00 00 00 1f | 04 | 00 | 00 00 00 01"  # END, 31 bytes, stream 1
    "00 05"  # status NOT_FOUND
    "00 0c 6e 6f 20 73 75 63 68 20 75 73 65 72"  # "no such user"
    "00 01 | 00 05 72 65 74 72 79 | 00 00 00 02 6e 6f"  # "retry": "no"
)
SIMPLE_END = h("00 00 00 06 | 04 | 00 | 00 00 00 01 | 00 00 | 00 00 | 00 00")
END_OF_STREAM = h("00 00 00 00 | 03 | 02 | 00 00 00 01")
CANCEL_FRAME = h("00 00 00 07 | 05 | 00 | 00 00 00 01 | 00 01 | 00 03 62 79 65")
PING_FRAME = h("00 00 00 08 | 07 | 00 | 00 00 00 00 | 74 65 74 68 65 72 21 21")
PING_ACK = h("00 00 00 08 | 07 | 01 | 00 00 00 00 | 74 65 74 68 65 72 21 21")
GOAWAY_FRAME = h(
    "00 00 00 12 | 08 | 00 | 00 00 00 00"  # GOAWAY, 18 bytes, stream 0
    "00 00 00 01 | 00 00 00 00"  # last stream id 1, NO_ERROR
    "00 08 73 68 75 74 64 6f 77 6e"  # "shutdown"
)
WINDOW_UPDATE_16K = h("00 00 00 04 | 06 | 00 | 00 00 00 01 | 00 00 40 00")


def test_client_preface_and_settings_vector() -> None:
    """A client codec with the default config queues exactly the preface + SETTINGS vector."""
    assert NativeCodec(Role.CLIENT).data_to_send() == CLIENT_PREFACE


def test_server_preface_announces_unlimited_streams_and_clamped_metadata() -> None:
    """A server announces 0xFFFFFFFF for unlimited streams and at least 8 KiB of metadata."""
    config = CodecConfig(
        max_frame_size=16384,
        initial_window=65536,
        max_concurrent_streams=None,
        max_metadata_size=1024,
    )
    assert NativeCodec(Role.SERVER, config).data_to_send() == h(
        "54 45 54 48 45 52 01 00 | 00 00 00 18 00 00 00 00 00 00"
        "00 01 00 00 40 00 | 00 02 00 01 00 00 | 00 03 ff ff ff ff | 00 04 00 00 20 00"
    )


def test_client_preface_vector_decodes_to_settings_changed() -> None:
    """A server fed the client preface vector reports the peer's settings."""
    server = NativeCodec(Role.SERVER)
    events = server.receive_data(CLIENT_PREFACE)
    assert events == [SettingsChanged(max_concurrent_streams=1000), WindowUpdated(stream_id=0)]
    assert server.max_outbound_streams == 1000


def test_open_vector_encode() -> None:
    """CallStarted with metadata and a deadline encodes to the OPEN vector."""
    client = client_after_preface()
    client.send(OPEN_EVENT)
    assert client.data_to_send() == OPEN_WITH_DEADLINE


def test_open_vector_decode() -> None:
    """The OPEN vector decodes to CallStarted with metadata, timeout and encoding."""
    assert server_after_preface().receive_data(OPEN_WITH_DEADLINE) == [OPEN_EVENT]


def test_data_chunking_vector_encode() -> None:
    """A message bigger than chunk_size is split into chunk_size DATA frames; the last
    carries END_MESSAGE (and END_STREAM)."""
    client = client_after_preface(CodecConfig(chunk_size=1024))
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client.data_to_send()
    client.send(Message(stream_id=1, data=b"a" * 2500, end_stream=True))
    assert client.data_to_send() == DATA_CHUNKS


def test_data_chunking_vector_decode() -> None:
    """Chunked DATA frames reassemble into one Message with end_stream."""
    server = server_after_preface()
    server.receive_data(MINIMAL_OPEN)
    assert server.receive_data(DATA_CHUNKS) == [
        Message(stream_id=1, data=b"a" * 2500, end_stream=True)
    ]


def test_headers_end_and_end_of_stream_vectors_encode() -> None:
    """Headers, EndOfStream and Trailers with status, message and trailers encode to the vectors."""
    client = client_after_preface()
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client.send(EndOfStream(stream_id=1))
    client.data_to_send()
    server = server_after_preface()
    server.receive_data(MINIMAL_OPEN)
    server.send(Headers(stream_id=1, metadata=(("k", "v"),)))
    server.send(
        Trailers(
            stream_id=1,
            status=Status.NOT_FOUND,
            message="no such user",
            metadata=(("retry", "no"),),
        )
    )
    assert server.data_to_send() == HEADERS_FRAME + END_WITH_TRAILERS
    assert client.receive_data(HEADERS_FRAME + END_WITH_TRAILERS) == [
        Headers(stream_id=1, metadata=(("k", "v"),)),
        Trailers(
            stream_id=1,
            status=Status.NOT_FOUND,
            message="no such user",
            metadata=(("retry", "no"),),
        ),
    ]


def test_end_of_stream_and_simple_end_vectors() -> None:
    """EndOfStream is an empty DATA with END_STREAM; an OK Trailers is a 6-byte END."""
    client = client_after_preface()
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client.data_to_send()
    client.send(EndOfStream(stream_id=1))
    assert client.data_to_send() == END_OF_STREAM
    server = server_after_preface()
    server.receive_data(MINIMAL_OPEN)
    assert server.receive_data(END_OF_STREAM) == [EndOfStream(stream_id=1)]
    server.send(Trailers(stream_id=1))
    assert server.data_to_send() == SIMPLE_END
    assert client.receive_data(SIMPLE_END) == [Trailers(stream_id=1, status=Status.OK)]


def test_cancel_vector_both_ways() -> None:
    """StreamReset encodes to the CANCEL vector and the vector decodes back to it."""
    reset = StreamReset(stream_id=1, status=Status.CANCELLED, message="bye")
    client = client_after_preface()
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client.data_to_send()
    client.send(reset)
    assert client.data_to_send() == CANCEL_FRAME
    server = server_after_preface()
    server.receive_data(MINIMAL_OPEN)
    assert server.receive_data(CANCEL_FRAME) == [reset]


def test_ping_vector_is_answered_automatically() -> None:
    """A received PING is reported and answered with a PING ACK carrying the same payload."""
    client = client_after_preface()
    assert client.receive_data(PING_FRAME) == [Ping(payload=b"tether!!")]
    assert client.data_to_send() == PING_ACK
    assert client.receive_data(PING_ACK) == [Ping(payload=b"tether!!", ack=True)]
    assert client.data_to_send() == b""
    client.send(Ping(payload=b"tether!!"))
    assert client.data_to_send() == PING_FRAME


def test_goaway_vector_both_ways() -> None:
    """GoAway encodes to the GOAWAY vector and the vector decodes back to it."""
    event = GoAway(last_stream_id=1, reason="shutdown")
    server = server_after_preface()
    server.send(event)
    assert server.data_to_send() == GOAWAY_FRAME
    assert client_after_preface().receive_data(GOAWAY_FRAME) == [event]


def test_window_update_vector() -> None:
    """An unfinished message's first 16 KiB chunk is credited back with the WINDOW_UPDATE
    vector (a quarter of a 64 KiB window), and that frame decodes to WindowUpdated."""
    server = server_after_preface(CodecConfig(initial_window=65536))
    server.receive_data(MINIMAL_OPEN)
    assert server.receive_data(h("00 00 40 00 03 00 00 00 00 01") + bytes(16384)) == []
    assert server.data_to_send() == WINDOW_UPDATE_16K
    client = client_after_preface()
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    assert client.receive_data(WINDOW_UPDATE_16K) == [WindowUpdated(stream_id=1)]


@pytest.mark.parametrize(
    ("prefix", "verdict"),
    [
        (b"", Detection.NEED_MORE),
        (b"TET", Detection.NEED_MORE),
        (b"TETHE", Detection.NEED_MORE),
        (b"TETHER", Detection.MATCH),
        (b"TETHER\x01\x00\x00\x00", Detection.MATCH),
        (b"TETHER\x09\x00", Detection.MATCH),
        (b"TETX", Detection.NO_MATCH),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Detection.NO_MATCH),
        (h("00 00 00 23 10 00 00 00 00 00 00 07 00 02"), Detection.NO_MATCH),  # TTHeader
        (h("00 00 00 23 0f ff 00 00 00 00 00 07 00 02"), Detection.NO_MATCH),  # THeader
        (h("00 00 00 19 80 01 00 01 00 00 00 03"), Detection.NO_MATCH),  # Framed thrift
        (h("80 01 00 01 00 00 00 03 73 61 79"), Detection.NO_MATCH),  # PurePayload
        (h("00 00 00 19 90 01 00 01 00 00 00 03"), Detection.NO_MATCH),  # Kitex protobuf
    ],
)
def test_detection(prefix: bytes, verdict: Detection) -> None:
    """detect() matches the magic with any version, waits on a prefix of it, rejects the rest."""
    assert detect_native(prefix) is verdict


def test_our_preface_never_matches_kitex_detection_rules() -> None:
    """None of the Kitex / Thrift sniffing rules (protocols.md §4) fire on the preface."""
    b = CLIENT_PREFACE[:8]
    w0, w1 = int.from_bytes(b[0:4], "big"), int.from_bytes(b[4:8], "big")
    assert b[:8] != b"PRI * HT"  # HTTP/2 (gRPC)
    assert w1 & 0xFFFF0000 not in (0x10000000, 0x80010000, 0x90010000, 0x0FFF0000)
    assert w0 & 0xFFFF0000 not in (0x80010000, 0xFFAF0000)


def test_registered_as_tether_with_priority_10() -> None:
    """The framing registry knows "tether": it detects our preface and builds NativeCodec."""
    framing = get_framing("tether")
    assert framing.priority == 10
    assert detect_framing(CLIENT_PREFACE[:8], [framing]) is framing
    assert detect_framing(CLIENT_PREFACE[:8]) is framing
    assert isinstance(framing.create(Role.SERVER, CodecConfig()), NativeCodec)
