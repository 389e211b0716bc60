"""The sans-I/O HTTP CONNECT head codec: byte vectors, limits, bad input, and properties
(no event loop anywhere in this file)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tether import LocalProtocolError, RemoteProtocolError
from tether.transport._http_connect_wire import (
    ConnectRequest,
    ConnectResponse,
    HeadLimits,
    Preface,
    basic_credentials,
    head_length,
    parse_connect_request,
    parse_response,
    serialize_connect_request,
    serialize_response,
    sniff_preface,
)

# -- byte vectors -----------------------------------------------------------------------

REQUEST = b"CONNECT example.com:8972 HTTP/1.1\r\nHost: example.com:8972\r\n\r\n"
#: rpcx's client (Go): a path target, HTTP/1.0, bare LF line endings.
RPCX_REQUEST = b"CONNECT /_rpcx_ HTTP/1.0\n\n"
#: rpcx's server answer, byte for byte.
RPCX_ANSWER = b"HTTP/1.0 200 Connected to rpcx\n\n"


def test_serialize_request_vector() -> None:
    """A CONNECT request is the request line, a Host header and a blank line, CRLF."""
    assert serialize_connect_request("example.com:8972") == REQUEST


def test_serialize_request_with_proxy_authorization() -> None:
    """Extra headers follow Host, in order; Basic credentials are base64(user:password)."""
    auth = basic_credentials("Aladdin", "open sesame")
    assert auth == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="  # RFC 7617's example
    head = serialize_connect_request("[::1]:80", (("Proxy-Authorization", auth),))
    assert head == (
        b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n"
        b"Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
    )


def test_serialize_response_vector() -> None:
    """The server's answer is a status line and a blank line."""
    assert serialize_response(200, "Connection established") == (
        b"HTTP/1.1 200 Connection established\r\n\r\n"
    )
    assert serialize_response(400, "Bad Request", (("Connection", "close"),)) == (
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
    )


def test_parse_request_vector() -> None:
    """The request head parses into its target, version and headers."""
    assert head_length(REQUEST) == len(REQUEST)
    request = parse_connect_request(REQUEST)
    assert request == ConnectRequest(
        "example.com:8972", "HTTP/1.1", (("Host", "example.com:8972"),)
    )
    assert request.header("HOST") == "example.com:8972"
    assert request.header("missing") is None


def test_rpcx_request_and_answer() -> None:
    """rpcx's bare-LF request and its exact answer bytes parse (Go's net/http accepts LF)."""
    assert head_length(RPCX_REQUEST) == len(RPCX_REQUEST)
    assert parse_connect_request(RPCX_REQUEST) == ConnectRequest("/_rpcx_", "HTTP/1.0")
    assert head_length(RPCX_ANSWER) == len(RPCX_ANSWER)
    answer = parse_response(RPCX_ANSWER)
    assert answer == ConnectResponse(200, "Connected to rpcx", "HTTP/1.0")
    assert answer.ok
    assert answer.status_line == "HTTP/1.0 200 Connected to rpcx"


def test_head_length_leaves_the_bytes_after_the_head() -> None:
    """Bytes after the blank line (the binary protocol, same segment) are not part of the head."""
    data = b"HTTP/1.1 200 OK\r\nVia: proxy\r\n\r\nTETHER\x01\x00"
    n = head_length(data)
    assert n is not None
    assert data[n:] == b"TETHER\x01\x00"
    assert parse_response(data[:n]).header("via") == "proxy"


def test_response_without_reason_and_error_status() -> None:
    """A status line may omit the reason; non-2xx answers are not ok."""
    answer = parse_response(b"HTTP/1.1 407\r\nProxy-Authenticate: Basic\r\n\r\n")
    assert answer.status == 407
    assert not answer.ok
    assert answer.status_line == "HTTP/1.1 407"


@pytest.mark.parametrize(
    "partial",
    [b"", b"CONNECT a:1 HTTP/1.1\r\n", b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r", b"HTTP/1.1 2"],
)
def test_head_length_waits_for_the_blank_line(partial: bytes) -> None:
    """An incomplete head is ``None`` (wait for more bytes), not an error."""
    assert head_length(partial) is None


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not CONNECT"),
        (b"CONNECT a:1 HTTP/2.0\r\n\r\n", "version"),
        (b"CONNECT a:1\r\n\r\n", "request line"),
        (b"CONNECT  a:1 HTTP/1.1\r\n\r\n", "request line"),
        (b"CONNECT a:1 HTTP/1.1\r\nHost : a\r\n\r\n", "malformed HTTP header"),
        (b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "folded"),
        (b"CONNECT a:1 HTTP/1.1\r\nNoColon\r\n\r\n", "malformed HTTP header"),
        (b"CONNECT a:1 HTTP/1.1\r\nX: a\x00b\r\n\r\n", "control character"),
        (b"CONN\xffECT a:1 HTTP/1.1\r\n\r\n", "method"),
        (b"CONNECT a\x7f:1 HTTP/1.1\r\n\r\n", "target"),
    ],
)
def test_bad_requests(head: bytes, match: str) -> None:
    """Every malformed request head is a RemoteProtocolError naming what is wrong."""
    with pytest.raises(RemoteProtocolError, match=match):
        parse_connect_request(head)


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (b"HTTP/1.1 20 OK\r\n\r\n", "status code"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "status code"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 O\x01K\r\n\r\n", "control character"),
    ],
)
def test_bad_responses(head: bytes, match: str) -> None:
    """Every malformed response head is a RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError, match=match):
        parse_response(head)


def test_head_starting_with_a_blank_line() -> None:
    """A head cannot start with an empty line."""
    with pytest.raises(RemoteProtocolError, match="empty line"):
        head_length(b"\r\nCONNECT a:1 HTTP/1.1\r\n\r\n")


def test_limits() -> None:
    """Head size, line length and header count are bounded, complete or not."""
    limits = HeadLimits(max_head_size=64, max_line=32, max_headers=2)
    with pytest.raises(RemoteProtocolError, match="line longer"):
        head_length(b"CONNECT " + b"a" * 40, limits)  # incomplete, already too long
    with pytest.raises(RemoteProtocolError, match="line longer"):
        head_length(b"CONNECT " + b"a" * 30 + b"\r\n\r\n", limits)
    with pytest.raises(RemoteProtocolError, match="larger than 64"):
        head_length(b"CONNECT a:1 HTTP/1.1\r\n" + b"X: 123456789012345\r\n" * 3, limits)
    with pytest.raises(RemoteProtocolError, match="more than 2 headers"):
        head_length(b"CONNECT a:1 HTTP/1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits)
    assert head_length(b"CONNECT a:1 HTTP/1\r\nA: 1\r\nB: 2\r\n\r\n", limits) is not None


def test_serialize_refuses_what_it_cannot_send() -> None:
    """Targets, names and values that would break the head are LocalProtocolErrors."""
    with pytest.raises(LocalProtocolError):
        serialize_connect_request("a b:1")
    with pytest.raises(LocalProtocolError):
        serialize_connect_request("ünï:1")
    with pytest.raises(LocalProtocolError):
        serialize_connect_request("a:1", (("X-Bad Name", "v"),))
    with pytest.raises(LocalProtocolError):
        serialize_connect_request("a:1", (("X", "line\r\nInjected: yes"),))
    with pytest.raises(LocalProtocolError):
        serialize_response(99, "no")
    with pytest.raises(LocalProtocolError):
        serialize_response(200, "OK\r\nX: injected")


# -- sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        (b"", Preface.NEED_MORE),
        (b"\x16\x03\x01\x02\x00", Preface.TLS),
        (b"CONN", Preface.NEED_MORE),
        (b"CONNECT ", Preface.HTTP_CONNECT),
        (b"CONNECTX", Preface.OTHER),
        (b"TETHER\x01\x00", Preface.OTHER),
        (b"PRI * HTTP/2.0", Preface.OTHER),
    ],
)
def test_sniff_preface(prefix: bytes, kind: Preface) -> None:
    """The first bytes are classified: TLS record, CONNECT, need more, or something else."""
    assert sniff_preface(prefix) is kind


def test_sniff_preface_only_reports_accepted_kinds() -> None:
    """A kind the listener does not accept is reported as OTHER."""
    assert sniff_preface(b"\x16\x03", tls=False) is Preface.OTHER
    assert sniff_preface(b"CONNECT ", connect=False) is Preface.OTHER
    assert sniff_preface(b"CON", connect=False) is Preface.OTHER


# -- properties -------------------------------------------------------------------------

_token = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefXYZ", min_size=1, max_size=20)
_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
).map(lambda v: v.strip(" \t"))
_headers = st.lists(st.tuples(_token, _value), max_size=8).map(tuple)
_target = st.from_regex(r"[a-z0-9.-]{1,30}:[0-9]{1,5}", fullmatch=True)


@given(_target, _headers, st.binary(max_size=64))
def test_request_round_trip(target: str, headers: tuple[tuple[str, str], ...], tail: bytes) -> None:
    """serialize → head_length → parse gives back the target and headers; the tail stays."""
    head = serialize_connect_request(target, headers)
    data = head + tail
    assert head_length(data) == len(head)
    request = parse_connect_request(data[: len(head)])
    assert request.target == target
    assert request.headers[1:] == headers or request.headers == headers


@given(st.integers(100, 599), _value, _headers)
def test_response_round_trip(
    status: int, reason: str, headers: tuple[tuple[str, str], ...]
) -> None:
    """serialize_response → parse_response gives back status, reason and headers."""
    head = serialize_response(status, reason, headers)
    answer = parse_response(head[: head_length(head)])
    assert (answer.status, answer.reason, answer.headers) == (status, reason, headers)


@given(_target, _headers, st.integers(1, 50))
def test_split_anywhere(target: str, headers: tuple[tuple[str, str], ...], cut: int) -> None:
    """A head delivered in pieces is incomplete until its last byte, then complete."""
    head = serialize_connect_request(target, headers)
    cut = min(cut, len(head) - 1)
    assert head_length(head[:cut]) is None
    assert head_length(head) == len(head)


@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    """Arbitrary bytes give a length, None or RemoteProtocolError, never anything else."""
    try:
        n = head_length(data, HeadLimits(max_head_size=256, max_line=128, max_headers=8))
    except RemoteProtocolError:
        return
    if n is not None:
        for parse in (parse_connect_request, parse_response):
            try:
                parse(data[:n])
            except RemoteProtocolError:
                pass
