"""The native codec's cached pieces of unary requests and its fused whole calls: a run of
``send_unary`` calls (methods, sizes, metadata and deadlines mixed) writes exactly the
frames the spec gives for each, and a read holding many whole requests or replies of
different sizes decodes each one with its own payload."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.framing.native_helpers import (
    DATA,
    END,
    END_MESSAGE,
    END_STREAM,
    HAS_DEADLINE,
    client_after_preface,
    frame,
    metadata,
    open_frame,
    server_after_preface,
    split_frames,
    u16,
)
from tether import Status
from tether.framing import CallStarted, Trailers

METHODS = [("svc", "A"), ("svc", "Bb"), ("other.Svc", "A")]

calls = st.lists(
    st.tuples(
        st.sampled_from(METHODS),
        st.binary(max_size=80),
        st.booleans(),  # with a metadata pair
        st.booleans(),  # with a deadline
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(calls)
def test_a_run_of_unary_requests_writes_the_spec_frames(
    script: list[tuple[tuple[str, str], bytes, bool, bool]],
) -> None:
    """Each unary request of a run is its own OPEN and DATA(END_STREAM) frames, whatever
    request came before it (the cached pieces never leak from one call into another)."""
    client = client_after_preface()
    for number, ((service, method), payload, with_meta, with_deadline) in enumerate(script):
        sid = 2 * number + 1
        pairs = (("k", "v"),) if with_meta else ()
        timeout = 2.0 if with_deadline else None
        client.send_unary(sid, service, method, pairs, timeout, "raw", payload)
        frames = split_frames(client.data_to_send())
        assert [(t, f, s) for t, f, s, _ in frames] == [
            (1, HAS_DEADLINE if with_deadline else 0, sid),
            (DATA, END_MESSAGE | END_STREAM, sid),
        ]
        opened = frames[0][3]
        if not with_deadline:
            expected = open_frame(
                sid,
                service,
                method,
                encoding="raw",
                meta=metadata(("k", "v")) if with_meta else b"\x00\x00",
            )
            assert opened == split_frames(expected)[0][3]
        assert frames[1][3] == payload


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=10))
def test_many_whole_requests_in_one_read_each_keep_their_payload(
    payloads: list[bytes],
) -> None:
    """Whole requests of different sizes read at once become one CallStarted each, with
    its own request as ``data``."""
    server = server_after_preface()
    server.whole_calls = True
    wire = b"".join(
        open_frame(2 * n + 1, "svc", "M", encoding="raw")
        + frame(DATA, END_MESSAGE | END_STREAM, 2 * n + 1, payload)
        for n, payload in enumerate(payloads)
    )
    events = server.receive_data(wire)
    assert [type(e) for e in events] == [CallStarted] * len(payloads)
    assert [(e.stream_id, e.data) for e in events if isinstance(e, CallStarted)] == [
        (2 * n + 1, payload) for n, payload in enumerate(payloads)
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=10))
def test_many_whole_replies_in_one_read_each_keep_their_payload(payloads: list[bytes]) -> None:
    """Whole replies (DATA then END) of different sizes read at once become one Trailers
    each, with its own reply as ``data`` and its status."""
    client = client_after_preface()
    client.whole_calls = True
    for n in range(len(payloads)):
        client.send_unary(2 * n + 1, "svc", "M", (), None, "raw", b"q")
    client.data_to_send()
    wire = b"".join(
        frame(DATA, END_MESSAGE, 2 * n + 1, payload)
        + frame(END, 0, 2 * n + 1, u16(int(Status.OK)) + u16(0) + u16(0))
        for n, payload in enumerate(payloads)
    )
    events = client.receive_data(wire)
    assert [type(e) for e in events] == [Trailers] * len(payloads)
    assert [(e.stream_id, e.data, e.status) for e in events if isinstance(e, Trailers)] == [
        (2 * n + 1, payload, Status.OK) for n, payload in enumerate(payloads)
    ]
