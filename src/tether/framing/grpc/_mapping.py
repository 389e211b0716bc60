"""gRPC's conventions on top of HTTP/2 (``grpc/grpc:doc/PROTOCOL-HTTP2.md``): timeouts,
status text, status mappings, content types, metadata and message compression.

Pure functions of their arguments; nothing here knows about frames or streams.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Final

from ..._exceptions import ErrorCode, LocalProtocolError
from ..._status import Status
from ..._types import BufferLike, MetadataPairs, MetadataValue

CONTENT_TYPE_PREFIX: Final = b"application/grpc"
#: ``grpc-encoding`` values this codec can compress and decompress.
COMPRESSIONS: Final = ("identity", "deflate", "gzip")
ACCEPT_ENCODING: Final = b"identity,deflate,gzip"

# -- grpc-timeout ----------------------------------------------------------------------

_UNIT_SECONDS: Final = {
    ord("H"): 3600.0,
    ord("M"): 60.0,
    ord("S"): 1.0,
    ord("m"): 1e-3,
    ord("u"): 1e-6,
    ord("n"): 1e-9,
}
_ENCODE_UNITS: Final = ((1e6, b"u"), (1e3, b"m"), (1.0, b"S"), (1 / 60, b"M"), (1 / 3600, b"H"))
_MAX_TIMEOUT_VALUE: Final = 99_999_999


def encode_timeout(seconds: float) -> bytes:
    """``grpc-timeout``: at most 8 digits in the finest unit that fits, rounded to the
    nearest unit (as the native protocol rounds to the nearest microsecond)."""
    if seconds <= 0:
        return b"0n"
    micros = round(seconds * 1e6)
    if micros <= _MAX_TIMEOUT_VALUE:  # the common case: below 100 s
        return b"%du" % micros
    for per_second, unit in _ENCODE_UNITS:
        value = round(seconds * per_second)
        if value <= _MAX_TIMEOUT_VALUE:
            return str(value).encode() + unit
    return b"99999999H"


def decode_timeout(value: bytes) -> float:
    """Seconds from a ``grpc-timeout`` value.

    Raises:
        ValueError: not 1-8 ASCII digits followed by one of ``H M S m u n``.
    """
    if not 2 <= len(value) <= 9 or not value[:-1].isdigit():
        raise ValueError(f"malformed grpc-timeout {value!r}")
    unit = _UNIT_SECONDS.get(value[-1])
    if unit is None:
        raise ValueError(f"malformed grpc-timeout unit in {value!r}")
    return int(value[:-1]) * unit


# -- grpc-message ----------------------------------------------------------------------

_PLAIN: Final = frozenset(range(0x20, 0x7F)) - {0x25}


def encode_status_message(message: str) -> bytes:
    """Percent-encode a status message: UTF-8 bytes outside ``%x20-%x24 / %x26-%x7E``."""
    data = message.encode("utf-8", "replace")
    if all(byte in _PLAIN for byte in data):
        return data
    return b"".join(bytes((b,)) if b in _PLAIN else b"%%%02X" % b for b in data)


def decode_status_message(value: bytes) -> str:
    """Undo percent-encoding; a malformed escape is kept as is (the spec asks leniency)."""
    if b"%" not in value:
        return value.decode("utf-8", "replace")
    out = bytearray()
    pos = 0
    end = len(value)
    while pos < end:
        byte = value[pos]
        if byte == 0x25 and pos + 2 < end and _is_hex(value[pos + 1 : pos + 3]):
            out.append(int(value[pos + 1 : pos + 3], 16))
            pos += 3
        else:
            out.append(byte)
            pos += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


# -- status mappings ---------------------------------------------------------------------

_STATUSES: Final = tuple(Status)
_HTTP_TO_STATUS: Final = {
    400: Status.INTERNAL,
    401: Status.UNAUTHENTICATED,
    403: Status.PERMISSION_DENIED,
    404: Status.UNIMPLEMENTED,
    429: Status.UNAVAILABLE,
    502: Status.UNAVAILABLE,
    503: Status.UNAVAILABLE,
    504: Status.UNAVAILABLE,
}
_RESET_TO_STATUS: Final = {
    ErrorCode.CANCEL: Status.CANCELLED,
    ErrorCode.REFUSED_STREAM: Status.UNAVAILABLE,
    ErrorCode.ENHANCE_YOUR_CALM: Status.RESOURCE_EXHAUSTED,
    ErrorCode.INADEQUATE_SECURITY: Status.PERMISSION_DENIED,
}


def status_from_code(value: bytes) -> Status:
    """A ``grpc-status`` value as a :class:`Status` (out-of-range or malformed: UNKNOWN)."""
    if value.isdigit():
        code = int(value)
        if code < len(_STATUSES):
            return _STATUSES[code]
    return Status.UNKNOWN


def status_from_http(http_status: int) -> Status:
    """The gRPC status a client synthesises for an HTTP status without ``grpc-status``."""
    return _HTTP_TO_STATUS.get(http_status, Status.UNKNOWN)


def status_from_reset(code: int) -> Status:
    """The gRPC status of a stream the peer reset with RST_STREAM ``code``."""
    return _RESET_TO_STATUS.get(ErrorCode.from_code(code), Status.INTERNAL)


# -- content type ------------------------------------------------------------------------

#: Payload encodings sent as plain ``application/grpc`` (protobuf is gRPC's default).
_PLAIN_ENCODINGS: Final = frozenset({"", "proto", "raw"})


def content_type_for(encoding: str) -> bytes:
    """The request/response content type for a tether payload encoding name."""
    if encoding in _PLAIN_ENCODINGS:
        return CONTENT_TYPE_PREFIX
    return CONTENT_TYPE_PREFIX + b"+" + encoding.encode("ascii")


def encoding_of(content_type: bytes) -> str | None:
    """The payload encoding a content type names: ``""`` for plain ``application/grpc``
    (no claim), ``"proto"``/``"thrift"``/... for a suffix; ``None`` if it is not gRPC."""
    if not content_type.startswith(CONTENT_TYPE_PREFIX):
        return None
    rest = content_type[len(CONTENT_TYPE_PREFIX) :]
    if not rest or rest[0] == 0x3B:  # ";" parameters
        return ""
    if rest[0] != 0x2B:  # "+"
        return None
    return rest[1:].split(b";", 1)[0].strip().decode("ascii", "replace")


# -- metadata ----------------------------------------------------------------------------

#: Headers that belong to the protocol, not to the application's metadata.
RESERVED: Final = frozenset(
    {
        b"content-type",
        b"te",
        b"grpc-timeout",
        b"grpc-encoding",
        b"grpc-accept-encoding",
        b"grpc-status",
        b"grpc-message",
        b"grpc-message-type",
        b"connection",
        b"content-length",
    }
)


def metadata_from_headers(fields: tuple[tuple[bytes, bytes], ...]) -> MetadataPairs:
    """Application metadata from header fields: pseudo and reserved headers dropped,
    ``-bin`` values base64-decoded (padded or not), others decoded as UTF-8."""
    out: list[tuple[str, MetadataValue]] = []
    for name, value in fields:
        if name[:1] == b":" or name in RESERVED:
            continue
        key = name.decode("ascii", "replace")
        if key.endswith("-bin"):
            out.append((key, decode_binary(value)))
        else:
            try:
                out.append((key, value.decode()))
            except UnicodeDecodeError:
                out.append((key, value.decode("latin-1")))
    return tuple(out)


def decode_binary(value: bytes) -> bytes:
    """A ``-bin`` header value: base64, padded or unpadded (gRPC accepts both); a value
    that is not base64 at all is kept as it came."""
    stripped = value.rstrip(b"=")
    try:
        return base64.b64decode(stripped + b"=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        return value


_FORBIDDEN_VALUE_BYTES: Final = (b"\r", b"\n", b"\x00")


def headers_from_metadata(metadata: MetadataPairs) -> list[tuple[bytes, bytes]]:
    """Header fields for application metadata: names lower-cased (HTTP/2 requires it),
    ``-bin`` values base64 without padding, text values UTF-8. Pseudo-headers and the
    headers the protocol owns (:data:`RESERVED`) are left out.

    Raises:
        LocalProtocolError: a name that is not ASCII, or a text value with CR, LF or NUL
            (which no HTTP/2 peer accepts; binary values belong under ``-bin`` keys).
    """
    out: list[tuple[bytes, bytes]] = []
    for key, value in metadata:
        try:
            name = key.lower().encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"metadata key {key!r} is not ASCII") from None
        if name[:1] == b":" or name in RESERVED:
            continue
        raw = value if isinstance(value, bytes) else value.encode()
        if name.endswith(b"-bin"):
            out.append((name, base64.b64encode(raw).rstrip(b"=")))
            continue
        for bad in _FORBIDDEN_VALUE_BYTES:
            if bad in raw:
                raise LocalProtocolError(
                    f"metadata {key!r} has a CR, LF or NUL in its value (use a -bin key)"
                )
        out.append((name, raw))
    return out


# -- compression -------------------------------------------------------------------------

_WBITS: Final = {"gzip": 31, "deflate": 15}


def compress(data: BufferLike, encoding: str) -> bytes:
    """``data`` compressed with a ``grpc-encoding`` (``gzip``: RFC 1952; ``deflate``: zlib)."""
    compressor = zlib.compressobj(wbits=_WBITS[encoding])
    return compressor.compress(data) + compressor.flush()


def decompress(data: bytes, encoding: str, limit: int) -> bytes | None:
    """``data`` decompressed, or ``None`` when the result would exceed ``limit`` bytes.

    Raises:
        ValueError: unknown encoding or corrupt data.
    """
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise ValueError(f"unsupported grpc-encoding {encoding!r}")
    decompressor = zlib.decompressobj(wbits=wbits)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt {encoding} message: {exc}") from exc
    if len(out) > limit:
        return None
    if not decompressor.eof:
        raise ValueError(f"truncated {encoding} message")
    return out
