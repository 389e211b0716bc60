"""HTTP/1.x ``CONNECT`` heads, sans-I/O: find, parse and produce them (no sockets here).

The ``http-connect`` transport (rpcx's ``http`` network) opens a tunnel with one HTTP
request head and reads one response head; after the blank line that ends the head the
connection carries the binary protocol. This module only deals in bytes:

* :func:`head_length` finds where a head ends in the bytes received so far,
* :func:`parse_connect_request` / :func:`parse_response` turn a head into a frozen value,
* :func:`serialize_connect_request` / :func:`serialize_response` produce heads,
* :func:`sniff_preface` classifies a connection's first bytes (TLS record, ``CONNECT``,
  anything else) for a listener that accepts several kinds of client on one port.

Line endings: CRLF is produced; CRLF and a bare LF are both accepted, as Go's
``net/http`` does (rpcx answers ``"HTTP/1.0 200 Connected to rpcx\\n\\n"``). Limits
(:class:`HeadLimits`) bound the head size, the line length and the header count; going
over one is a :class:`~tether.RemoteProtocolError`, as is every malformed head. Header
names are RFC 9110 tokens; whitespace before the colon and obsolete line folding are
rejected (both are request-smuggling vectors). Values are decoded as ISO-8859-1.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass

from .._exceptions import LocalProtocolError, RemoteProtocolError

#: The method that opens a tunnel.
CONNECT_METHOD = b"CONNECT "
#: The first byte of a TLS handshake record (a ClientHello starts with it).
TLS_HANDSHAKE_RECORD = 0x16

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")
_STATUS = re.compile(rb"[0-9]{3}")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # visible ASCII, no spaces or controls
_FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # controls except HT

Header = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadLimits:
    """Bounds on one head (request or response), checked while it arrives.

    Attributes:
        max_head_size: bytes up to and including the blank line that ends the head.
        max_line: bytes in one line (request/status line or header), line ending excluded.
        max_headers: header fields.
    """

    max_head_size: int = 16 * 1024
    max_line: int = 8 * 1024
    max_headers: int = 100


DEFAULT_LIMITS = HeadLimits()


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A parsed ``CONNECT`` request head.

    ``target`` is the request target as sent: normally ``host:port`` (authority form);
    rpcx clients send a path (``/_rpcx_``), which a server may accept as well.
    """

    target: str
    version: str = "HTTP/1.1"
    headers: tuple[Header, ...] = ()

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or ``None``."""
        return _find(self.headers, name)


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    """A parsed response head: ``version status reason`` plus headers."""

    status: int
    reason: str = ""
    version: str = "HTTP/1.1"
    headers: tuple[Header, ...] = ()

    @property
    def ok(self) -> bool:
        """A 2xx answer: the tunnel is open (RFC 9110 §9.3.6)."""
        return 200 <= self.status < 300

    @property
    def status_line(self) -> str:
        """``HTTP/1.1 407 Proxy Authentication Required``, for error messages."""
        return f"{self.version} {self.status} {self.reason}".rstrip()

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or ``None``."""
        return _find(self.headers, name)


class Preface(enum.Enum):
    """What a connection's first bytes are (see :func:`sniff_preface`)."""

    NEED_MORE = "need more bytes"
    TLS = "a TLS handshake record"
    HTTP_CONNECT = "an HTTP CONNECT request"
    OTHER = "something else (a binary protocol)"


def sniff_preface(prefix: bytes | memoryview, *, tls: bool = True, connect: bool = True) -> Preface:
    """Classify the first bytes of a connection.

    ``tls`` / ``connect`` say which kinds the caller accepts; a kind not accepted is
    reported as :attr:`Preface.OTHER`. A TLS record is recognised by its first byte
    (0x16, handshake); ``CONNECT`` by its first 8 bytes (``NEED_MORE`` while the bytes
    so far are a proper prefix of ``b"CONNECT "``). Never raises.
    """
    n = len(prefix)
    if n == 0:
        return Preface.NEED_MORE
    if tls and prefix[0] == TLS_HANDSHAKE_RECORD:
        return Preface.TLS
    if connect:
        head = bytes(prefix[: len(CONNECT_METHOD)])
        if head == CONNECT_METHOD:
            return Preface.HTTP_CONNECT
        if CONNECT_METHOD.startswith(head):
            return Preface.NEED_MORE
    return Preface.OTHER


def head_length(data: bytes | memoryview, limits: HeadLimits = DEFAULT_LIMITS) -> int | None:
    """The length of the head at the start of ``data`` (through its blank line), or ``None``.

    ``None`` means the head is not complete yet. Only the limits are checked here.

    Raises:
        RemoteProtocolError: the head (or one of its lines, or its header count) is over
            ``limits``.
    """
    buf = bytes(data[: limits.max_head_size + 2])
    pos = 0
    lines = 0
    while True:
        eol = buf.find(b"\n", pos)
        if eol < 0:
            if len(buf) - pos > limits.max_line + 1:
                raise RemoteProtocolError(f"HTTP head line longer than {limits.max_line} bytes")
            if len(buf) > limits.max_head_size:
                raise RemoteProtocolError(f"HTTP head larger than {limits.max_head_size} bytes")
            return None
        end = eol + 1
        if end > limits.max_head_size:
            raise RemoteProtocolError(f"HTTP head larger than {limits.max_head_size} bytes")
        content = eol - pos - (1 if eol > pos and buf[eol - 1] == 0x0D else 0)
        if content > limits.max_line:
            raise RemoteProtocolError(f"HTTP head line longer than {limits.max_line} bytes")
        if content == 0:
            if lines == 0:
                raise RemoteProtocolError("HTTP head starts with an empty line")
            return end
        lines += 1
        if lines - 1 > limits.max_headers:
            raise RemoteProtocolError(f"HTTP head has more than {limits.max_headers} headers")
        pos = end


def parse_connect_request(head: bytes | memoryview) -> ConnectRequest:
    """Parse a complete request head (as delimited by :func:`head_length`).

    Raises:
        RemoteProtocolError: malformed, not ``CONNECT``, or not HTTP/1.0 / HTTP/1.1.
    """
    first, headers = _split(head)
    parts = first.split(b" ")
    if len(parts) != 3:
        raise RemoteProtocolError(f"malformed HTTP request line {_show(first)}")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise RemoteProtocolError(f"malformed HTTP method {_show(method)}")
    if method != b"CONNECT":
        raise RemoteProtocolError(f"HTTP method {_show(method)} is not CONNECT")
    if not _TARGET.fullmatch(target):
        raise RemoteProtocolError(f"malformed CONNECT target {_show(target)}")
    if not _VERSION.fullmatch(version):
        raise RemoteProtocolError(f"unsupported HTTP version {_show(version)}")
    return ConnectRequest(target.decode("ascii"), version.decode("ascii"), headers)


def parse_response(head: bytes | memoryview) -> ConnectResponse:
    """Parse a complete response head (as delimited by :func:`head_length`).

    Raises:
        RemoteProtocolError: malformed status line or headers, or not HTTP/1.x.
    """
    first, headers = _split(head)
    version, _, rest = first.partition(b" ")
    status, _, reason = rest.partition(b" ")
    if not _VERSION.fullmatch(version):
        raise RemoteProtocolError(f"malformed HTTP status line {_show(first)}")
    if not _STATUS.fullmatch(status):
        raise RemoteProtocolError(f"malformed HTTP status code in {_show(first)}")
    if _FIELD_VALUE_BAD.search(reason):
        raise RemoteProtocolError(f"control character in HTTP reason phrase {_show(first)}")
    return ConnectResponse(int(status), reason.decode("latin-1"), version.decode("ascii"), headers)


def serialize_connect_request(target: str, headers: tuple[Header, ...] = ()) -> bytes:
    """``CONNECT target HTTP/1.1`` with a ``Host`` header (unless given) and ``headers``.

    Raises:
        LocalProtocolError: a target, header name or value that cannot be sent as is.
    """
    raw_target = _encode(target, "CONNECT target", _TARGET)
    fields = headers
    if _find(headers, "host") is None:
        fields = (("Host", target), *headers)
    return b"CONNECT " + raw_target + b" HTTP/1.1\r\n" + _fields(fields) + b"\r\n"


def serialize_response(
    status: int, reason: str, headers: tuple[Header, ...] = (), *, version: str = "HTTP/1.1"
) -> bytes:
    """A response head: ``version status reason`` then ``headers`` and a blank line.

    Raises:
        LocalProtocolError: a status outside 100-599, or a reason, header name or value
            that cannot be sent as is.
    """
    if not 100 <= status <= 599:
        raise LocalProtocolError(f"HTTP status {status} is out of range")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise LocalProtocolError(f"unsupported HTTP version {version!r}")
    raw_reason = reason.encode("latin-1", "replace")
    if _FIELD_VALUE_BAD.search(raw_reason):
        raise LocalProtocolError(f"control character in HTTP reason phrase {reason!r}")
    line = f"{version} {status} ".encode("ascii") + raw_reason + b"\r\n"
    return line + _fields(headers) + b"\r\n"


def basic_credentials(user: str, password: str) -> str:
    """The ``Proxy-Authorization`` value for HTTP Basic: ``Basic base64(user:password)``."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# -- internals -----------------------------------------------------------------------------


def _find(headers: tuple[Header, ...], name: str) -> str | None:
    lowered = name.lower()
    found = None
    for key, value in headers:
        if key.lower() == lowered:
            found = value
    return found


def _show(raw: bytes) -> str:
    text = repr(raw[:80])
    return text + ("..." if len(raw) > 80 else "")


def _split(head: bytes | memoryview) -> tuple[bytes, tuple[Header, ...]]:
    """The start line and the header fields of a complete head."""
    lines = bytes(head).split(b"\n")
    # A complete head ends with "\n" + blank line ("\r\n" or "\n"): drop the tail.
    while lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if not lines:
        raise RemoteProtocolError("empty HTTP head")
    headers: list[Header] = []
    for line in lines[1:]:
        if not line or line[:1] in (b" ", b"\t"):
            raise RemoteProtocolError(f"folded or empty HTTP header line {_show(line)}")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise RemoteProtocolError(f"malformed HTTP header {_show(line)}")
        value = value.strip(b" \t")
        if _FIELD_VALUE_BAD.search(value):
            raise RemoteProtocolError(f"control character in HTTP header {_show(name)}")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    return lines[0], tuple(headers)


def _encode(text: str, what: str, pattern: re.Pattern[bytes]) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} {text!r} is not ASCII") from None
    if not pattern.fullmatch(raw):
        raise LocalProtocolError(f"{what} {text!r} is malformed")
    return raw


def _fields(headers: tuple[Header, ...]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_name = _encode(name, "HTTP header name", _TOKEN)
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"HTTP header {name!r} value is not Latin-1") from None
        if _FIELD_VALUE_BAD.search(raw_value) or raw_value != raw_value.strip(b" \t"):
            raise LocalProtocolError(f"HTTP header {name!r} has an invalid value")
        out += raw_name + b": " + raw_value + b"\r\n"
    return bytes(out)
