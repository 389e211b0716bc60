"""HPACK dynamic-table indexing of our header blocks (no event loop): the encoder's model
of the peer's table, its agreement with ``hpack``'s decoder and with ours, and the codec
using it only for blocks that leave at once, checked against ``h2``."""

from __future__ import annotations

import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings, strategies as st

from tether import LocalProtocolError, Status
from tether.framing import CallStarted, EndOfStream, Headers, Message, Role, Trailers
from tether.framing.grpc import GrpcCodec, GrpcOptions, _hpack

from .h2_peer import Session, client_session, h2_connection, server_session, text_headers
from .wire import HEADERS, parse_frames

REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/pkg.Echo/Say"),
    (":authority", "localhost"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]
POOL = [
    (b":path", b"/pkg.S/A"),
    (b":path", b"/pkg.S/B"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
    (b"user-agent", b"tether-grpc/1"),
    (b"grpc-accept-encoding", b"identity,deflate,gzip"),
    (b"grpc-status", b"0"),
    (b":status", b"200"),
    (b"x-big", b"v" * 1500),
]


def test_first_block_inserts_then_references() -> None:
    """A field is inserted once (literal with incremental indexing), then sent as a
    one-byte reference; the newest entry is index 62."""
    table = _hpack.EncoderTable()
    first = table.encode([(b"grpc-status", b"0"), (b"te", b"trailers")])
    assert first[0] & 0xC0 == 0x40
    assert len(table) == 2
    generation = table.generation
    assert table.encode([(b"te", b"trailers"), (b"grpc-status", b"0")]) == b"\xbe\xbf"
    assert table.encode([(b"te", b"trailers")]) == b"\xbe"
    assert table.generation == generation
    assert table.encode([(b":status", b"200")]) == b"\x88"  # static: never inserted


def test_table_never_evicts_and_respects_its_capacity() -> None:
    """Fields that do not fit are sent stateless; nothing inserted is ever dropped."""
    table = _hpack.EncoderTable(capacity=100)
    table.encode([(b"x-a", b"1" * 40)])  # 3 + 40 + 32 = 75 bytes
    size = table.size
    block = table.encode([(b"x-b", b"2" * 40)])
    assert table.size == size
    assert len(table) == 1
    assert block[0] & 0xF0 == 0x00  # literal without indexing
    assert table.encode([(b"x-a", b"1" * 40)]) == b"\xbe"


def test_shrinking_an_empty_table_keeps_indexing_and_a_used_one_gives_up() -> None:
    """The peer shrinking HEADER_TABLE_SIZE: an empty table just shrinks; a table in use
    is given up (the peer may evict our entries), so blocks become stateless."""
    empty = _hpack.EncoderTable()
    empty.resize(200)
    assert empty.enabled
    assert empty.capacity == 200
    used = _hpack.EncoderTable()
    used.encode([(b"x-a", b"1")])
    generation = used.generation
    used.resize(4000)
    assert not used.enabled
    assert used.generation != generation
    assert used.encode([(b"x-a", b"1")]) == _hpack.encode_field(b"x-a", b"1")
    used.resize(8192)  # growing changes nothing
    assert not used.enabled


def test_rollback_forgets_insertions_of_a_block_never_sent() -> None:
    """After rollback the table is as before the block: the field is inserted again."""
    table = _hpack.EncoderTable()
    table.encode([(b"x-a", b"1")])
    mark = table.mark()
    table.encode([(b"x-b", b"2")])
    table.rollback(mark)
    assert len(table) == 1
    assert table.encode([(b"x-a", b"1")]) == b"\xbe"
    assert table.encode([(b"x-b", b"2")])[0] & 0xC0 == 0x40


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("block"),
                st.lists(st.sampled_from(POOL), max_size=6),
                st.booleans(),
            ),
            st.tuples(st.just("resize"), st.integers(0, 5000), st.just(True)),
        ),
        max_size=25,
    )
)
def test_encoder_model_agrees_with_hpack_and_our_decoder(
    steps: list[tuple[str, object, bool]],
) -> None:
    """Whatever sequence of blocks and table shrinks (each followed by the size update
    the codec sends), hpack's decoder and ours read exactly the fields we encoded, and
    our model never holds more than the peer's table."""
    table = _hpack.EncoderTable()
    reference = hpack.Decoder()
    ours = _hpack.HeaderDecoder(1 << 20)
    peer_size = 4096
    update = b""
    for kind, arg, index in steps:
        if kind == "resize":
            assert isinstance(arg, int)
            if arg < peer_size:
                update = _hpack.table_size_update(arg)
                table.resize(arg)
            peer_size = arg
            continue
        assert isinstance(arg, list)
        block = update + table.encode(arg, index=index)
        update = b""
        assert [tuple(f) for f in reference.decode(block, raw=True)] == arg
        assert list(ours.decode(block)) == arg
        assert table.size <= min(table.capacity, reference.header_table.maxsize)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                [
                    (":path", "/a.B/C"),
                    ("x-user", "ada"),
                    ("x-user", "bob"),
                    ("grpc-timeout", "5S"),
                    ("content-type", "application/grpc"),
                ]
            ),
            min_size=1,
            max_size=5,
        ),
        max_size=30,
    )
)
def test_our_decoder_follows_an_indexing_encoder(blocks: list[list[tuple[str, str]]]) -> None:
    """Blocks from hpack's (indexing, Huffman) encoder decode the same in our decoder,
    with its caches, as in hpack's, block after block (repeats included)."""
    encoder = hpack.Encoder()
    reference = hpack.Decoder()
    ours = _hpack.HeaderDecoder(1 << 20)
    for fields in blocks + blocks:
        block = encoder.encode(fields)
        want = [tuple(f) for f in reference.decode(block, raw=True)]
        assert list(ours.decode(block)) == want


def test_repeated_calls_send_one_byte_references() -> None:
    """From the second call of a method on, our request head is a few bytes of
    references (plus the grpc-timeout literal), and h2 reads every field."""
    s = client_session()
    sizes = []
    for sid in (1, 3, 5):
        s.ours.send(CallStarted(stream_id=sid, service="pkg.Echo", method="Say", timeout=2.0))
        s.ours.send(EndOfStream(stream_id=sid))
        out = s.ours.data_to_send()
        (head,) = [f for f in parse_frames(out) if f[0] == HEADERS]
        sizes.append(len(head[3]))
        for event in s.theirs.receive_data(out):
            s.their_events.append(event)
        s.pump()
    requests = s.theirs_of(h2.events.RequestReceived)
    assert len(requests) == 3
    for request in requests:
        headers = text_headers(request)
        assert headers[":path"] == "/pkg.Echo/Say"
        assert headers["content-type"] == "application/grpc"
        assert headers["grpc-timeout"] == "2000000u"
        assert headers["grpc-accept-encoding"] == "identity,deflate,gzip"
    assert sizes[1] == sizes[2] == 8 + 23 < sizes[0]  # 8 references + the timeout literal


def test_our_server_answers_with_references() -> None:
    """Our server's response head shrinks to two bytes and OK trailers to one; h2 reads
    them right, call after call."""
    s = server_session()
    blocks = []
    for sid in (1, 3, 5):
        s.theirs.send_headers(sid, REQUEST_HEADERS, end_stream=True)
        s.pump()
        s.ours.send(Message(stream_id=sid, data=b"r"))
        s.ours.send(Trailers(stream_id=sid))
        out = s.ours.data_to_send()
        blocks.append([f[3] for f in parse_frames(out) if f[0] == HEADERS])
        for event in s.theirs.receive_data(out):
            s.their_events.append(event)
        s.pump()
    assert [len(b) for b in blocks[2]] == [2, 1]
    assert blocks[1] == blocks[2]
    for response in s.theirs_of(h2.events.ResponseReceived):
        assert text_headers(response) == {":status": "200", "content-type": "application/grpc"}
    for trailers in s.theirs_of(h2.events.TrailersReceived):
        assert text_headers(trailers) == {"grpc-status": "0"}
    assert len(s.theirs_of(h2.events.TrailersReceived)) == 3


def test_blocks_queued_behind_data_do_not_use_the_table() -> None:
    """Trailers queued behind flow-controlled DATA leave after later streams' indexed
    blocks: they are stateless, so h2 decodes every block whatever the order."""
    s = server_session(initial_window=10)
    s.auto_ack = False
    s.theirs.send_headers(1, REQUEST_HEADERS, end_stream=True)
    s.pump()
    s.ours.send(Message(stream_id=1, data=b"x" * 100))  # mostly queued: window of 10
    s.ours.send(Trailers(stream_id=1, status=Status.NOT_FOUND, message="late"))
    for sid in (3, 5, 7):
        s.theirs.send_headers(sid, REQUEST_HEADERS, end_stream=True)
        s.pump()
        s.ours.send(Headers(stream_id=sid))
        s.ours.send(Trailers(stream_id=sid, status=Status.ABORTED))
        s.pump()
    s.auto_ack = True
    for event in s.theirs_of(h2.events.DataReceived):
        s.theirs.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    s.pump()
    assert not s.theirs_of(h2.events.ConnectionTerminated)
    trailers = {e.stream_id: text_headers(e) for e in s.theirs_of(h2.events.TrailersReceived)}
    assert trailers[1] == {"grpc-status": "5", "grpc-message": "late"}
    assert {sid: trailers[sid]["grpc-status"] for sid in (3, 5, 7)} == {3: "10", 5: "10", 7: "10"}
    assert bytes(s.data[1])[5:] == b"x" * 100


def test_peer_shrinking_its_table_in_use_turns_indexing_off() -> None:
    """h2 shrinking HEADER_TABLE_SIZE to 0 after our heads were indexed: the next block
    carries the size update and no reference; h2 reads it."""
    s = client_session()
    s.ours.send(CallStarted(stream_id=1, service="s.S", method="M"))
    s.ours.send(EndOfStream(stream_id=1))
    s.pump()
    s.theirs.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    s.pump()
    for sid in (3, 5):
        s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
        s.ours.send(EndOfStream(stream_id=sid))
        s.pump()
    assert not s.theirs_of(h2.events.ConnectionTerminated)
    paths = [text_headers(e)[":path"] for e in s.theirs_of(h2.events.RequestReceived)]
    assert paths == ["/s.S/M"] * 3
    assert not s.ours._table.enabled


def test_a_full_table_falls_back_to_stateless_fields() -> None:
    """Hundreds of methods: the table fills to its 4096 bytes and never beyond; later
    heads go out stateless and h2 reads them all."""
    s = client_session()
    for index in range(200):
        sid = 1 + 2 * index
        s.ours.send(CallStarted(stream_id=sid, service="pkg.Service", method=f"Method{index}"))
        s.ours.send(EndOfStream(stream_id=sid))
        s.pump()
        # h2 refuses nothing; keep its stream count low
        s.theirs.send_headers(sid, [(":status", "200"), ("grpc-status", "0")], end_stream=True)
        s.pump()
    assert s.ours._table.size <= 4096
    assert len(s.ours._table) < 200
    paths = [text_headers(e)[":path"] for e in s.theirs_of(h2.events.RequestReceived)]
    assert paths == [f"/pkg.Service/Method{i}" for i in range(200)]


def test_a_block_too_big_to_send_leaves_the_table_as_it_was() -> None:
    """A request refused for the peer's MAX_HEADER_LIST_SIZE never reaches the peer, so
    the fields it would have inserted are forgotten: the next call still decodes."""
    s = Session(
        GrpcCodec(Role.CLIENT),
        h2_connection(client=False),
    )
    s.theirs.update_settings({h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1000})
    s.pump()
    with pytest.raises(LocalProtocolError):
        s.ours.send(
            CallStarted(stream_id=1, service="s.S", method="M", metadata=(("x-big", "v" * 2000),))
        )
    s.ours.send(CallStarted(stream_id=3, service="s.S", method="M"))
    s.ours.send(EndOfStream(stream_id=3))
    s.pump()
    assert not s.theirs_of(h2.events.ConnectionTerminated)
    (request,) = s.theirs_of(h2.events.RequestReceived)
    assert text_headers(request)[":path"] == "/s.S/M"


def test_indexing_can_be_turned_off() -> None:
    """``GrpcOptions(header_indexing=False)``: h2's dynamic table stays empty."""
    s = Session(
        GrpcCodec(Role.CLIENT, None, GrpcOptions(header_indexing=False)),
        h2_connection(client=False),
    )
    s.pump()
    for sid in (1, 3):
        s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
        s.ours.send(EndOfStream(stream_id=sid))
        s.pump()
    assert len(s.theirs_of(h2.events.RequestReceived)) == 2
    assert len(s.theirs.decoder.header_table.dynamic_entries) == 0
