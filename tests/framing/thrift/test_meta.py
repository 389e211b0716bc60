"""MetaHandlers: the built-in one writes and reads TTHeader key-values exactly as Kitex's
TTHeader and metainfo handlers do, and user handlers run after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether import Status
from tether.framing import CallStarted, Message, Role, Trailers
from tether.framing.thrift import (
    HeaderFields,
    KitexTTHeaderHandler,
    MetaHandler,
    RequestMeta,
    ResponseMeta,
    ThriftCodec,
    Transport,
    decode_ttheader,
    meta_handlers,
    read_envelope,
    register_meta_handler,
    unregister_meta_handler,
)
from tether.framing.thrift._meta import int_key_for, int_key_name

KITEX = KitexTTHeaderHandler()


def test_client_request_header_matches_kitex() -> None:
    """The client writes Kitex's int keys and the metainfo str keys verbatim, plus isn."""
    request = RequestMeta(
        method="echo",
        service="Echo",
        timeout=3.0,
        metadata=[
            ("RPC_TRANSIT_k1", "v1"),
            ("RPC_PERSIST_pk", "pv"),
            (":from-service", "kitexpeer.client"),
            (":from-method", "main"),
            (":to-service", "kitexpeer.server"),
            (":int-17", "100"),
            (":int-99999", "ignored"),
            (":not-a-key", "ignored"),
        ],
    )
    header = HeaderFields()
    KITEX.write_request(request, header)
    assert header.str_info == {"RPC_TRANSIT_k1": "v1", "RPC_PERSIST_pk": "pv", "isn": "Echo"}
    assert header.int_info == {
        3: "kitexpeer.client",
        20: "main",
        6: "kitexpeer.server",
        17: "100",
        9: "echo",
        22: "1",
        1: "unframed",
        12: "3000",
    }


def test_isn_is_the_bare_idl_service_name() -> None:
    """A package-qualified service travels as its bare name in isn, as Kitex sends it;
    ToService keeps the full name."""
    header = HeaderFields()
    KITEX.write_request(RequestMeta(method="Echo", service="pbecho.EchoPB"), header)
    assert header.str_info["isn"] == "EchoPB"
    assert header.int_info[6] == "pbecho.EchoPB"


def test_client_request_defaults_oneway_and_framed() -> None:
    """ToService defaults to the IDL service; oneway is MsgType 4; Framed sets "framed";
    no timeout, no RPCTimeout; a given isn is kept."""
    header = HeaderFields()
    KITEX.write_request(
        RequestMeta(
            method="ping", service="Echo", oneway=True, framed=True, metadata=[("isn", "X")]
        ),
        header,
    )
    assert header.int_info == {6: "Echo", 9: "ping", 22: "4", 1: "framed"}
    assert header.str_info == {"isn": "X"}


def test_server_reads_the_request_header() -> None:
    """The server takes the service from isn (else ToService), the timeout from
    RPCTimeout, and reports str keys verbatim and int keys as pseudo-keys."""
    request = RequestMeta(method="echo")
    header = HeaderFields(
        {3: "a", 20: "main", 6: "svc", 9: "echo", 12: "1500", 22: "1", 1: "framed", 40: "x"},
        {"isn": "Echo", "RPC_TRANSIT_k": "v"},
    )
    KITEX.read_request(header, request)
    assert (request.service, request.timeout) == ("Echo", 1.5)
    assert set(request.metadata) == {
        ("isn", "Echo"),
        ("RPC_TRANSIT_k", "v"),
        (":from-service", "a"),
        (":from-method", "main"),
        (":to-service", "svc"),
        (":to-method", "echo"),
        (":transport-type", "framed"),
        (":int-40", "x"),
    }
    bare = RequestMeta(method="Echo")
    KITEX.read_request(HeaderFields({6: "pbecho.EchoPB"}, {"isn": "EchoPB"}), bare)
    assert bare.service == "EchoPB"
    assert (":to-service", "pbecho.EchoPB") in bare.metadata
    fallback = RequestMeta(method="echo")
    KITEX.read_request(HeaderFields({6: "svc", 12: "soon"}, {}), fallback)
    assert (fallback.service, fallback.timeout) == ("svc", None)


def test_server_response_header_matches_kitex() -> None:
    """The reply carries MsgType, the reply metadata verbatim, and crrst=1 for an unknown
    method; pseudo-keys are not written."""
    header = HeaderFields()
    response = ResponseMeta(
        message_type=3,
        status=Status.UNIMPLEMENTED,
        metadata=[("srv_backward", "b"), (":ignored", "x")],
    )
    KITEX.write_response(response, header)
    assert header.int_info == {22: "3"}
    assert header.str_info == {"srv_backward": "b", "crrst": "1"}
    header = HeaderFields()
    KITEX.write_response(ResponseMeta(message_type=2, metadata=[("biz-status", "1")]), header)
    assert (header.int_info, header.str_info) == ({22: "2"}, {"biz-status": "1"})


def test_client_reads_the_response_header() -> None:
    """Every str key comes back verbatim; int keys as pseudo-keys, without MsgType."""
    response = ResponseMeta(message_type=2)
    KITEX.read_response(HeaderFields({22: "2", 5: "idc"}, {"srv_backward": "b"}), response)
    assert response.metadata == [("srv_backward", "b"), (":int-5", "idc")]


def test_pseudo_key_names() -> None:
    """Named int keys and :int-<id> pseudo-keys map both ways; other names map to None."""
    assert [int_key_name(k) for k in (1, 3, 6, 9, 20, 7)] == [
        ":transport-type",
        ":from-service",
        ":to-service",
        ":to-method",
        ":from-method",
        ":int-7",
    ]
    assert [int_key_for(n) for n in (":to-method", ":int-7", ":int-x", ":int-65536", "k")] == [
        9,
        7,
        None,
        None,
        None,
    ]


class Tagger(MetaHandler):
    """Adds a str header to requests and reports it on the server side."""

    def write_request(self, request: RequestMeta, header: HeaderFields) -> None:
        header.str_info["tag"] = "from-client"

    def read_request(self, header: HeaderFields, request: RequestMeta) -> None:
        request.metadata.append(("seen-tag", str(header.str_info.get("tag"))))

    def write_response(self, response: ResponseMeta, header: HeaderFields) -> None:
        header.int_info[40] = "reply"


@pytest.fixture
def tagger() -> Iterator[Tagger]:
    handler = Tagger()
    register_meta_handler(handler)
    try:
        yield handler
    finally:
        unregister_meta_handler(handler)


def test_registered_handlers_run_after_the_builtin(tagger: Tagger) -> None:
    """A registered MetaHandler runs on both sides after the built-in one."""
    assert meta_handlers()[-1] is tagger
    assert isinstance(meta_handlers()[0], KitexTTHeaderHandler)
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    server = ThriftCodec(Role.SERVER)
    client.send(CallStarted(stream_id=1, service="Echo", method="echo"))
    client.send(Message(stream_id=1, data=b"\x00", end_stream=True))
    started = server.receive_data(client.data_to_send())[0]
    assert isinstance(started, CallStarted)
    assert ("tag", "from-client") in started.metadata
    assert ("seen-tag", "from-client") in started.metadata
    server.send(Trailers(stream_id=1))
    data = server.data_to_send()
    _, envelope = read_envelope(memoryview(data), len(data), 1 << 20)
    assert envelope is not None
    assert envelope.header.int_info == {22: "2", 40: "reply"}  # type: ignore[union-attr]
    final = client.receive_data(data)[-1]
    assert isinstance(final, Trailers)
    assert (":int-40", "reply") in final.metadata


def test_unregistered_handlers_stop_running() -> None:
    """unregister_meta_handler removes a handler (and tolerates one never registered)."""
    handler = Tagger()
    register_meta_handler(handler)
    unregister_meta_handler(handler)
    unregister_meta_handler(handler)
    assert handler not in meta_handlers()


def test_base_handler_does_nothing() -> None:
    """The MetaHandler base class leaves headers and calls untouched."""
    base = MetaHandler()
    header = HeaderFields()
    request = RequestMeta(method="m")
    response = ResponseMeta(message_type=2)
    base.write_request(request, header)
    base.read_request(header, request)
    base.write_response(response, header)
    base.read_response(header, response)
    assert (header.int_info, header.str_info, request.metadata, response.metadata) == (
        {},
        {},
        [],
        [],
    )


class Counter(MetaHandler):
    """Counts how often each hook runs."""

    def __init__(self) -> None:
        self.calls = {
            "write_request": 0,
            "read_request": 0,
            "write_response": 0,
            "read_response": 0,
        }

    def write_request(self, request: RequestMeta, header: HeaderFields) -> None:
        self.calls["write_request"] += 1

    def read_request(self, header: HeaderFields, request: RequestMeta) -> None:
        self.calls["read_request"] += 1

    def write_response(self, response: ResponseMeta, header: HeaderFields) -> None:
        self.calls["write_response"] += 1

    def read_response(self, header: HeaderFields, response: ResponseMeta) -> None:
        self.calls["read_response"] += 1


def test_user_handlers_run_for_every_message_even_with_identical_headers() -> None:
    """The codec's header caches never skip a user handler: it runs on every message."""
    counter = Counter()
    handlers = (KITEX, counter)
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER, handlers=handlers)
    server = ThriftCodec(Role.SERVER, handlers=handlers)
    for _ in range(3):
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="Echo", method="echo", timeout=1.0))
        client.send(Message(stream_id=sid, data=b"\x00", end_stream=True))
        server.receive_data(client.data_to_send())
        server.send(Trailers(stream_id=sid))
        client.receive_data(server.data_to_send())
    assert counter.calls == dict.fromkeys(counter.calls, 3)


def test_cached_headers_equal_fresh_ones() -> None:
    """Repeated identical calls (served from the caches) decode to the same events."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    server = ThriftCodec(Role.SERVER)
    seen = []
    for _ in range(3):
        sid = client.next_stream_id()
        client.send(
            CallStarted(stream_id=sid, service="Echo", method="echo", metadata=(("k", "v"),))
        )
        client.send(Message(stream_id=sid, data=b"\x00", end_stream=True))
        started = server.receive_data(client.data_to_send())[0]
        assert isinstance(started, CallStarted)
        seen.append((started.service, started.metadata, started.timeout))
        server.send(Trailers(stream_id=sid, metadata=(("b", "1"),)))
        final = client.receive_data(server.data_to_send())[-1]
        assert isinstance(final, Trailers)
        assert final.metadata == (("b", "1"),)
    assert seen[0] == seen[1] == seen[2]
    assert ("k", "v") in seen[0][1]


class Scribbler(MetaHandler):
    """Mutates the received header fields it is handed (a handler may)."""

    def read_request(self, header: HeaderFields, request: RequestMeta) -> None:
        header.str_info["scribbled"] = "yes"
        header.int_info.clear()


def test_a_handler_mutating_received_fields_leaves_later_messages_intact() -> None:
    """A user handler that mutates a received header's fields gets copies: the header
    decode cache, shared by every message with the same header bytes, is unchanged."""
    handlers = (KITEX, Scribbler())
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    server = ThriftCodec(Role.SERVER, handlers=handlers)
    for _ in range(2):
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="Echo", method="echo"))
        client.send(Message(stream_id=sid, data=b"\x00", end_stream=True))
        started = server.receive_data(client.data_to_send())[0]
        assert isinstance(started, CallStarted)
        assert ("isn", "Echo") in started.metadata
        assert (":to-method", "echo") in started.metadata
        assert ("scribbled", "yes") not in started.metadata


def test_decoded_headers_are_copies_unless_shared() -> None:
    """decode_ttheader hands out its own dicts (a caller may mutate them); shared=True
    hands out the decode cache's, identical for the same header bytes."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    client.send(CallStarted(stream_id=1, service="Echo", method="echo"))
    client.send(Message(stream_id=1, data=b"\x00", end_stream=True))
    view = memoryview(client.data_to_send())
    first, start = decode_ttheader(view, 0, len(view))
    first.str_info["mutated"] = "yes"
    again, _ = decode_ttheader(view, 0, len(view))
    assert "mutated" not in again.str_info
    assert again.str_info == {"isn": "Echo"}
    shared_a, shared_start = decode_ttheader(view, 0, len(view), shared=True)
    shared_b, _ = decode_ttheader(view, 0, len(view), shared=True)
    assert shared_start == start
    assert shared_a.str_info is shared_b.str_info
    assert shared_a.str_info == again.str_info


def test_remembered_headers_follow_every_change_of_the_call() -> None:
    """The codec's memo of its last header never outlives a change: calls alternating
    metadata, timeout, method, oneway and reply status each carry their own header."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    server = ThriftCodec(Role.SERVER)
    first = (("k", "1"),)
    second = (("k", "2"),)
    calls = [
        ("echo", first, None, False),
        ("echo", first, None, False),
        ("echo", second, None, False),
        ("echo", first, 2.0, False),
        ("ping", first, 2.0, False),
        ("ping", first, 2.0, True),
        ("echo", first, None, False),
    ]
    for method, metadata, timeout, oneway in calls * 2:
        sid = client.next_stream_id()
        client.send(
            CallStarted(
                stream_id=sid,
                service="Echo",
                method=method,
                metadata=metadata,
                timeout=timeout,
                oneway=oneway,
            )
        )
        client.send(Message(stream_id=sid, data=b"\x00", end_stream=True))
        started = server.receive_data(client.data_to_send())[0]
        assert isinstance(started, CallStarted)
        assert (started.method, started.timeout, started.oneway) == (method, timeout, oneway)
        assert metadata[0] in started.metadata
        assert (":to-method", method) in started.metadata
        if oneway:
            continue
        status = Status.UNIMPLEMENTED if method == "ping" else Status.OK
        server.send(Trailers(stream_id=sid, status=status))
        (final,) = [e for e in client.receive_data(server.data_to_send()) if type(e) is Trailers]
        assert isinstance(final, Trailers)
        assert final.status is status
        assert (("crrst", "1") in final.metadata) is (status is Status.UNIMPLEMENTED)
