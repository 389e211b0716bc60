"""gRPC request and response header lists: parsing them into calls and statuses, and
building the response blocks (``PROTOCOL-HTTP2.md``). Pure functions of their arguments.
"""

from __future__ import annotations

import dataclasses
from typing import Final, NamedTuple

from ..._exceptions import ErrorCode
from ..._status import Status
from ..._types import MetadataPairs
from .._events import Headers
from ._hpack import CACHEABLE_BLOCK, HeaderList, encode_block, encode_field, encode_metadata
from ._mapping import (
    decode_status_message,
    decode_timeout,
    encode_status_message,
    encoding_of,
    metadata_from_headers,
    status_from_code,
)

_new_headers = Headers.__new__  # object.__new__ unless compiled (mypyc refuses that)
_set_stream_id = vars(Headers)["stream_id"].__set__
_set_metadata = vars(Headers)["metadata"].__set__
if tuple(f.name for f in dataclasses.fields(Headers)) != ("stream_id", "metadata"):
    raise RuntimeError("Headers changed: update the builder in tether.framing.grpc._heads")


def headers_event(stream_id: int, metadata: MetadataPairs) -> Headers:
    """``Headers(stream_id=..., metadata=...)`` without the keyword-binding ``__init__``
    (the same object; see :mod:`tether.framing._native_events`)."""
    event = _new_headers(Headers)
    _set_stream_id(event, stream_id)
    _set_metadata(event, metadata)
    return event


#: Parsed header lists kept per connection (small lists only, see :func:`small`).
CACHE_SIZE: Final = 64


class Request(NamedTuple):
    """A parsed request header list (cached per distinct list)."""

    service: str
    method: str
    encoding: str
    metadata: MetadataPairs
    timeout: float | None
    compression: str
    content_type: bytes


class Refusal(NamedTuple):
    """A request the codec answers itself instead of reporting it."""

    http_status: int
    status: Status
    message: str
    #: RST_STREAM code instead of a response (0: answer with headers).
    reset: int = 0


class Response(NamedTuple):
    """A parsed response header or trailer list (cached per distinct list)."""

    http_status: int | None
    grpc_status: Status | None
    message: str
    metadata: MetadataPairs
    compression: str


def small(fields: HeaderList) -> bool:
    """True for header lists small enough to keep parsed (the caches stay bounded)."""
    return sum(len(name) + len(value) for name, value in fields) <= CACHEABLE_BLOCK


def parse_request(fields: HeaderList) -> Request | Refusal:
    """Check a request header list against gRPC's rules and extract the call."""
    method = path = content_type = None
    timeout: float | None = None
    compression = ""
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name not in (b":scheme", b":authority"):
                return Refusal(400, Status.INTERNAL, "", int(ErrorCode.PROTOCOL_ERROR))
        elif name == b"content-type":
            content_type = value
        elif name == b"grpc-timeout":
            try:
                timeout = decode_timeout(value)
            except ValueError as exc:
                return Refusal(200, Status.INTERNAL, str(exc))
        elif name == b"grpc-encoding":
            compression = value.decode("ascii", "replace")
    if method is None or path is None:
        return Refusal(400, Status.INTERNAL, "", int(ErrorCode.PROTOCOL_ERROR))
    if method != b"POST":
        return Refusal(405, Status.INTERNAL, f"method {method!r} is not allowed (gRPC uses POST)")
    encoding = encoding_of(content_type) if content_type is not None else None
    if encoding is None:
        return Refusal(415, Status.INTERNAL, f"invalid gRPC request content-type {content_type!r}")
    if compression in ("identity",):
        compression = ""
    elif compression and compression not in ("gzip", "deflate"):
        return Refusal(200, Status.UNIMPLEMENTED, f"unsupported grpc-encoding {compression!r}")
    service, slash, name = path[1:].partition(b"/") if path[:1] == b"/" else (b"", b"", b"")
    if not slash or not service or not name or b"/" in name:
        return Refusal(200, Status.UNIMPLEMENTED, f"malformed method path {path!r}")
    return Request(
        service.decode("utf-8", "replace"),
        name.decode("utf-8", "replace"),
        encoding,
        metadata_from_headers(fields),
        timeout,
        compression,
        content_type if content_type is not None else b"",
    )


def parse_response(fields: HeaderList) -> Response:
    """Extract what a client needs from response headers or trailers."""
    http_status: int | None = None
    grpc_status: Status | None = None
    text = ""
    compression = ""
    for name, value in fields:
        if name == b":status":
            http_status = int(value) if value.isdigit() else 0
        elif name == b"grpc-status":
            grpc_status = status_from_code(value)
        elif name == b"grpc-message":
            text = decode_status_message(value)
        elif name == b"grpc-encoding":
            compression = value.decode("ascii", "replace")
            if compression == "identity":
                compression = ""
    return Response(http_status, grpc_status, text, metadata_from_headers(fields), compression)


def trailer_block(status: Status, text: str, metadata: list[tuple[bytes, bytes]]) -> bytes:
    """The stateless HPACK block of gRPC trailers (without ``:status``)."""
    return encode_field(b"grpc-status", b"%d" % status) + trailer_tail(text, metadata)


def trailer_tail(text: str, metadata: list[tuple[bytes, bytes]]) -> bytes:
    """The part of a trailer block after ``grpc-status``: the status message (if any)
    and the trailing metadata, stateless."""
    block = encode_field(b"grpc-message", encode_status_message(text)) if text else b""
    return block + encode_metadata(metadata) if metadata else block


def response_head(content_type: bytes) -> bytes:
    """The HPACK block of ``:status 200`` + ``content-type``."""
    return encode_block([(b":status", b"200"), (b"content-type", content_type)])
