"""Per-stream flow control, chunking, reassembly and message size limits of the native
protocol."""

from __future__ import annotations

from tests.framing.native_helpers import (
    CANCEL,
    DATA,
    END,
    END_MESSAGE,
    PREFACE,
    WINDOW_UPDATE,
    calls_only,
    frame,
    native_pair,
    settings,
    split_frames,
)
from tether import Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    Message,
    NativeCodec,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)

C, S = Role.CLIENT, Role.SERVER
WINDOW = 65536
SMALL = CodecConfig(initial_window=WINDOW, max_frame_size=16384)


def call(sid: int = 1) -> CallStarted:
    return CallStarted(stream_id=sid, service="svc", method="M")


def data_frames(raw: bytes) -> list[tuple[int, int, int, bytes]]:
    return [f for f in split_frames(raw) if f[0] == DATA]


def test_stalled_receiver_stops_the_sender_and_acknowledging_releases_it() -> None:
    """With no acknowledgement, DATA stops once the window is spent and the rest queues in
    the codec; acknowledging the delivered messages lets it go out."""
    pair = native_pair(server_config=SMALL, keep_bookkeeping=True)
    pair.send(C, call())
    delivered = []
    for _ in range(WINDOW // 4096):
        delivered += pair.send(C, Message(stream_id=1, data=b"m" * 4096))
    assert len(delivered) == 16
    for n in range(1, 4):
        pair.client.send(Message(stream_id=1, data=b"m" * 4096))
        assert pair.client.pending_send(1) == 4096 * n
        assert data_frames(pair.client.data_to_send()) == []
    assert pair.transfer(S) == []  # the stalled server returned no credit
    for message in delivered:
        pair.server.acknowledge_received(1, len(message.data))
    updates = pair.transfer(S)
    assert set(updates) == {WindowUpdated(stream_id=1)}
    assert pair.client.pending_send(1) == 0
    assert pair.transfer(C) == [Message(stream_id=1, data=b"m" * 4096)] * 3


def test_window_updates_are_reported_and_release_queued_messages() -> None:
    """A WINDOW_UPDATE produces WindowUpdated(stream) and flushes what was queued."""
    pair = native_pair(server_config=SMALL, keep_bookkeeping=True)
    pair.send(C, call())
    first = pair.send(C, Message(stream_id=1, data=b"x" * WINDOW))
    assert first == [Message(stream_id=1, data=b"x" * WINDOW)]
    pair.client.send(Message(stream_id=1, data=b"y" * 100))
    assert pair.client.pending_send(1) == 100
    pair.server.acknowledge_received(1, WINDOW)
    assert WindowUpdated(stream_id=1) in pair.transfer(S)
    assert pair.client.pending_send(1) == 0
    assert pair.transfer(C) == [Message(stream_id=1, data=b"y" * 100)]


def test_message_ten_times_the_window_completes_without_acknowledgement() -> None:
    """Chunks of an unfinished message are credited back at once, so a 10x-window message
    arrives whole although the receiver never acknowledges anything."""
    pair = native_pair(server_config=SMALL)
    payload = bytes(range(256)) * (10 * WINDOW // 256)
    pair.send(C, call())
    received = pair.send(C, Message(stream_id=1, data=payload, end_stream=True))
    for _ in range(100):
        if received:
            break
        pair.transfer(S)
        received = calls_only(pair.transfer(C))
    assert received == [Message(stream_id=1, data=payload, end_stream=True)]


def test_partial_chunk_credit_is_batched_by_quarter_window() -> None:
    """Credit for an unfinished message goes back in WINDOW_UPDATEs of a quarter window."""
    pair = native_pair(server_config=SMALL, client_config=CodecConfig(chunk_size=4096))
    pair.send(C, call())
    pair.send(C, Message(stream_id=1, data=b"z" * (8 * 4096 + 1)))
    updates = [f for f in split_frames(pair.server.data_to_send()) if f[0] == WINDOW_UPDATE]
    assert [int.from_bytes(f[3], "big") for f in updates] == [16384, 16384]


def test_credit_of_a_message_returns_only_when_fully_acknowledged() -> None:
    """Acknowledging half a message returns nothing; the other half returns its credit."""
    pair = native_pair(server_config=SMALL)
    pair.send(C, call())
    pair.send(C, Message(stream_id=1, data=b"q" * 16384))
    pair.server.acknowledge_received(1, 8192)
    assert pair.server.data_to_send() == b""
    pair.server.acknowledge_received(1, 8192)
    ((ftype, _, sid, payload),) = split_frames(pair.server.data_to_send())
    assert (ftype, sid, int.from_bytes(payload, "big")) == (WINDOW_UPDATE, 1, 16384)


def test_acknowledging_unknown_or_finished_streams_is_a_no_op() -> None:
    """acknowledge_received on a stream that is gone (or half-closed by the peer) sends nothing."""
    pair = native_pair(server_config=SMALL)
    pair.send(C, call())
    pair.send(C, Message(stream_id=1, data=b"q" * 20000, end_stream=True))
    pair.server.data_to_send()  # the credit for the first, unfinished 16 KiB chunk
    pair.server.acknowledge_received(1, 20000)  # the client sends no more: no credit needed
    pair.server.acknowledge_received(99, 10)
    assert pair.server.data_to_send() == b""


def test_unary_call_needs_no_window_update() -> None:
    """A unary call (OPEN, DATA end, DATA, END) exchanges no WINDOW_UPDATE at all."""
    pair = native_pair()
    pair.send(C, [call(), Message(stream_id=1, data=b"req", end_stream=True)])
    pair.server.acknowledge_received(1, 3)
    pair.server.send(Message(stream_id=1, data=b"resp"))
    pair.server.send(Trailers(stream_id=1))
    raw = pair.server.data_to_send()
    assert [f[0] for f in split_frames(raw)] == [DATA, END]
    pair.client.receive_data(raw)
    pair.client.acknowledge_received(1, 4)
    assert pair.client.data_to_send() == b""


def test_trailers_queue_behind_data_waiting_for_credit() -> None:
    """END never overtakes DATA still queued for credit; it follows once the data leaves."""
    pair = native_pair(client_config=SMALL, keep_bookkeeping=True)
    pair.send(C, [call(), Message(stream_id=1, data=b"q", end_stream=True)])
    payload = b"r" * (WINDOW + 10)
    pair.server.send(Message(stream_id=1, data=payload))
    pair.server.send(Trailers(stream_id=1, status=Status.OK))
    assert pair.server.pending_send(1) == 10
    first = pair.transfer(S)
    assert first == []  # 64 KiB of a message: no event yet, no END either
    pair.transfer(C)  # the client credits the unfinished message back
    assert pair.transfer(S) == [Message(stream_id=1, data=payload), Trailers(stream_id=1)]
    assert "streams=0" in repr(pair.server)


def test_send_windows_grow_when_the_peer_settings_arrive() -> None:
    """Data sent before the peer's SETTINGS uses the 64 KiB default window; the announced
    INITIAL_WINDOW then releases the rest and reports WindowUpdated(0)."""
    client = NativeCodec(C)
    client.send(call())
    client.send(Message(stream_id=1, data=b"e" * 100_000))
    frames = data_frames(client.data_to_send())
    assert [len(f[3]) for f in frames] == [16384] * 4  # default 16 KiB frames, 64 KiB window
    assert client.pending_send(1) == 100_000 - 65536
    events = client.receive_data(PREFACE + settings(initial_window=1 << 20, max_frame_size=1 << 20))
    assert events == [SettingsChanged(max_concurrent_streams=None), WindowUpdated(stream_id=0)]
    assert [len(f[3]) for f in data_frames(client.data_to_send())] == [100_000 - 65536]
    assert client.pending_send(1) == 0


def test_chunks_are_cut_to_the_window_rather_than_wait() -> None:
    """When the window is smaller than a chunk, the sender sends exactly what fits."""
    pair = native_pair(server_config=SMALL, client_config=CodecConfig(chunk_size=10000))
    pair.send(C, call())
    pair.client.send(Message(stream_id=1, data=b"w" * 70000))
    sizes = [len(f[3]) for f in data_frames(pair.client.data_to_send())]
    assert sizes == [10000] * 6 + [5536]
    assert pair.client.pending_send(1) == 70000 - WINDOW


def test_zero_length_message_is_one_empty_data_frame() -> None:
    """An empty message is a single empty DATA with END_MESSAGE and arrives as b""."""
    pair = native_pair()
    pair.send(C, call())
    pair.client.send(Message(stream_id=1, data=b""))
    raw = pair.client.data_to_send()
    assert data_frames(raw) == [(DATA, END_MESSAGE, 1, b"")]
    assert pair.server.receive_data(raw) == [Message(stream_id=1, data=b"")]


def test_large_messages_are_sent_by_reference() -> None:
    """Large messages go out as the caller's bytes or memoryview slices of them (no copy)."""
    pair = native_pair()
    pair.send(C, call())
    for size in (1 << 20, 5 << 19):  # one chunk; two and a half 1 MiB chunks
        payload = bytes(size)
        pair.client.send(Message(stream_id=1, data=payload))
        refs = [
            b
            for b in pair.client.buffers_to_send()
            if b is payload or (isinstance(b, memoryview) and b.obj is payload)
        ]
        assert sum(len(b) for b in refs) == size


def test_message_over_max_message_size_resets_only_that_stream() -> None:
    """A too-large message is dropped, the peer gets CANCEL(RESOURCE_EXHAUSTED), the local
    side sees StreamReset, and the connection keeps working."""
    pair = native_pair(server_config=CodecConfig(max_message_size=5000))
    pair.send(C, call())
    events = pair.send(C, Message(stream_id=1, data=b"b" * 5001))
    assert len(events) == 1
    reset = events[0]
    assert isinstance(reset, StreamReset)
    assert reset.status is Status.RESOURCE_EXHAUSTED
    assert "max_message_size" in reset.message
    raw = pair.server.data_to_send()
    assert [f[0] for f in split_frames(raw)] == [CANCEL]
    assert pair.client.receive_data(raw) == [reset]
    pair.send(C, call(3))
    assert pair.send(C, Message(stream_id=3, data=b"b" * 5000)) == [
        Message(stream_id=3, data=b"b" * 5000)
    ]


def test_chunked_message_over_max_message_size_is_cut_at_the_crossing_chunk() -> None:
    """A chunked message is reset as soon as its reassembled size passes the limit."""
    pair = native_pair(
        server_config=CodecConfig(max_message_size=3000),
        client_config=CodecConfig(chunk_size=1024),
    )
    pair.send(C, call())
    events = pair.send(C, Message(stream_id=1, data=b"c" * 4000))
    assert [type(e) for e in events] == [StreamReset]
    assert isinstance(events[0], StreamReset)
    assert events[0].message.startswith("message of 3072+ bytes")


def test_resetting_a_stream_drops_its_queued_data() -> None:
    """StreamReset discards data waiting for credit and writes CANCEL at once."""
    pair = native_pair(server_config=SMALL)
    pair.send(C, call())
    pair.client.send(Message(stream_id=1, data=b"d" * (WINDOW + 5)))
    pair.client.data_to_send()
    assert pair.client.pending_send(1) == 5
    pair.client.send(StreamReset(stream_id=1))
    assert pair.client.pending_send(1) == 0
    assert [f[0] for f in split_frames(pair.client.data_to_send())] == [CANCEL]


def test_a_received_cancel_drops_queued_data() -> None:
    """The peer's CANCEL reports StreamReset and discards what we still had queued."""
    pair = native_pair(client_config=SMALL)
    pair.send(C, call())
    pair.server.send(Message(stream_id=1, data=b"d" * (WINDOW + 5)))
    pair.server.data_to_send()
    assert pair.server.pending_send(1) == 5
    assert pair.send(C, StreamReset(stream_id=1)) == [StreamReset(stream_id=1)]
    assert pair.server.pending_send(1) == 0


def test_frames_for_a_call_whose_end_is_still_queued() -> None:
    """Once we sent END (queued behind DATA), the peer's DATA is ignored and its CANCEL
    drops the queue without an event."""
    pair = native_pair(client_config=SMALL)
    pair.send(C, call())
    pair.server.send(Message(stream_id=1, data=b"d" * (WINDOW + 5)))
    pair.server.send(Trailers(stream_id=1))
    pair.server.data_to_send()
    assert pair.send(C, Message(stream_id=1, data=b"late")) == []
    assert pair.send(C, StreamReset(stream_id=1)) == []
    assert pair.server.pending_send(1) == 0
    assert "streams=0" in repr(pair.server)


def test_empty_message_queues_behind_data_waiting_for_credit() -> None:
    """An empty message sent while data waits for credit follows that data, in order."""
    pair = native_pair(server_config=SMALL)
    pair.send(C, call())
    pair.client.send(Message(stream_id=1, data=b"d" * (WINDOW + 5)))
    pair.client.send(Message(stream_id=1, data=b"", end_stream=True))
    assert pair.transfer(C) == []
    pair.server.acknowledge_received(1, WINDOW + 5)
    pair.transfer(S)
    assert pair.transfer(C) == [
        Message(stream_id=1, data=b"d" * (WINDOW + 5)),
        Message(stream_id=1, data=b"", end_stream=True),
    ]


def test_reassembly_edge_cases() -> None:
    """Empty chunks carry nothing, an empty final chunk ends a message, and a final chunk
    that crosses max_message_size resets the stream."""
    pair = native_pair(server_config=CodecConfig(max_message_size=10))
    pair.send(C, call())
    pair.send(C, call(3))
    raw = (
        frame(DATA, 0, 1, b"abc")
        + frame(DATA, 0, 1, b"")
        + frame(DATA, END_MESSAGE, 1, b"")
        + frame(DATA, 0, 3, b"123456")
        + frame(DATA, END_MESSAGE, 3, b"7890x")
    )
    events = pair.server.receive_data(raw)
    assert events[0] == Message(stream_id=1, data=b"abc")
    assert isinstance(events[1], StreamReset)
    assert events[1].stream_id == 3
    assert len(events) == 2


def test_a_stalled_reader_bounds_memory_however_the_sender_chunks() -> None:
    """A sender cannot dodge back-pressure with tiny last chunks: once a window of
    delivered messages is unread, even unfinished-message credit is held back."""
    pair = native_pair(server_config=SMALL)
    pair.send(C, call())
    server = pair.server
    chunk = frame(DATA, 0, 1, bytes(16384))
    first = chunk * 3 + frame(DATA, 0, 1, bytes(16383)) + frame(DATA, END_MESSAGE, 1, b"!")
    assert server.receive_data(first) == [Message(stream_id=1, data=bytes(WINDOW - 1) + b"!")]
    returned = split_frames(server.data_to_send())  # the three full quarters, at once
    assert [int.from_bytes(f[3], "big") for f in returned] == [16384] * 3
    # A window of data now waits unread: the next message's chunks earn no credit, so
    # the peer can send 48 KiB more and then must wait.
    assert server.receive_data(chunk * 3) == []
    assert server.data_to_send() == b""
    server.acknowledge_received(1, WINDOW)
    ((ftype, _, _, payload),) = split_frames(server.data_to_send())
    assert (ftype, int.from_bytes(payload, "big")) == (WINDOW_UPDATE, WINDOW)
