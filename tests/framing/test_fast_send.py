"""The hot-path senders (send_call_started, send_message, send_trailers) are exactly
``send(event)`` without the event: same bytes, same errors, for every codec."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tests.framing.native_helpers import client_after_preface, server_after_preface
from tether import LocalProtocolError, Status
from tether.framing import CallStarted, FrameCodec, Message, Role, Trailers, get_framing

_names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
_pairs = st.lists(st.tuples(st.sampled_from(["a", "x-id", "k"]), st.text(max_size=8)), max_size=3)


def _call(
    codec: FrameCodec, fast: bool, service: str, method: str, meta: tuple, timeout: float | None
) -> bytes:
    if fast:
        codec.send_call_started(1, service, method, meta, timeout, "raw")
        codec.send_message(1, b"request", True)
    else:
        codec.send(
            CallStarted(
                stream_id=1,
                service=service,
                method=method,
                metadata=meta,
                timeout=timeout,
                encoding="raw",
            )
        )
        codec.send(Message(stream_id=1, data=b"request", end_stream=True))
    return codec.data_to_send()


@given(service=_names, method=_names, meta=_pairs, timeout=st.none() | st.floats(0.001, 100))
def test_native_client_fast_path_bytes_match_events(
    service: str, method: str, meta: list[tuple[str, str]], timeout: float | None
) -> None:
    """A native client opening a call and sending its request writes identical bytes
    through the fast path and through send(event)."""
    pairs = tuple(meta)
    slow = _call(client_after_preface(), False, service, method, pairs, timeout)
    fast = _call(client_after_preface(), True, service, method, pairs, timeout)
    assert fast == slow


def _reply(fast: bool, status: Status, message: str, meta: tuple) -> bytes:
    server = server_after_preface()
    client = client_after_preface()
    client.send(
        CallStarted(stream_id=1, service="svc", method="M", encoding="raw", end_stream=True)
    )
    server.receive_data(client.data_to_send())
    server.data_to_send()
    if fast:
        server.send_message(1, b"reply", False)
        server.send_trailers(1, status, message, meta)
    else:
        server.send(Message(stream_id=1, data=b"reply", end_stream=False))
        server.send(Trailers(stream_id=1, status=status, message=message, metadata=meta))
    return server.data_to_send()


@given(
    status=st.sampled_from(list(Status)),
    message=st.text(max_size=10),
    meta=_pairs,
)
def test_native_server_fast_path_bytes_match_events(
    status: Status, message: str, meta: list[tuple[str, str]]
) -> None:
    """A native server's reply and trailers are the same bytes either way."""
    pairs = tuple(meta)
    assert _reply(True, status, message, pairs) == _reply(False, status, message, pairs)


def test_native_fast_paths_refuse_what_send_refuses() -> None:
    """The fast paths raise LocalProtocolError where send(event) does (unknown stream,
    wrong stream-id parity)."""
    client = client_after_preface()
    with pytest.raises(LocalProtocolError):
        client.send_message(7, b"x", False)
    with pytest.raises(LocalProtocolError):
        client.send_trailers(7, Status.OK, "", ())
    with pytest.raises(LocalProtocolError):
        client.send_call_started(2, "svc", "M")


def test_default_fast_paths_build_events_for_other_codecs() -> None:
    """A codec that does not override them (gRPC) gets the same bytes as send(event)."""
    outputs = []
    for fast in (False, True):
        codec = get_framing("grpc").create(Role.CLIENT, None)
        codec.data_to_send()
        outputs.append(_call(codec, fast, "svc", "M", (("x-id", "1"),), 5.0))
    assert outputs[0] == outputs[1]
