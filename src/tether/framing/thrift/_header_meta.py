"""TTHeader key-values to and from call metadata: the MetaHandlers of one codec, with
process-wide caches for what the built-in handler alone makes of its inputs.

What :class:`~tether.framing.thrift.KitexTTHeaderHandler` alone makes of the same inputs
never changes, and peers repeat their headers call after call, so when it is the only
handler these bounded caches skip it: header bodies written, by everything the handler
reads; what was read from a received header body, by its bytes. A registered handler
may depend on anything, so with one the handlers run every time.
"""

from __future__ import annotations

from typing import Final, TypeVar

from ..._status import Status
from ..._types import MetadataPairs, MetadataValue
from .._events import CallStarted
from ._meta import (
    BUILTIN_META_HANDLER,
    CONNECTION_RESET,
    HeaderFields,
    MetaHandler,
    RequestMeta,
    ResponseMeta,
)
from ._ttheader import CACHEABLE_SIZE, PROTOCOL_THRIFT_BINARY, TTHeader, encode_header_body

#: What the handlers read from a request header: ``(service, metadata, timeout)``.
RequestInfo = tuple[str, MetadataPairs, float | None]

#: TTHeader request bodies written, by everything the built-in handler reads.
_REQUEST_HEADERS: Final[dict[tuple[object, ...], bytes]] = {}
#: Reply header bodies, with whether they carry ``crrst``.
_RESPONSE_HEADERS: Final[dict[tuple[object, ...], tuple[bytes, bool]]] = {}
#: What was read from received header bodies, by their bytes.
_READ_REQUESTS: Final[dict[bytes, RequestInfo]] = {}
_READ_RESPONSES: Final[dict[bytes, MetadataPairs]] = {}
_HEADER_CACHE_SIZE: Final = 256
_UNIMPLEMENTED: Final = Status.UNIMPLEMENTED

_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _HEADER_CACHE_SIZE:
        cache.clear()
    cache[key] = value


class HeaderMeta:
    """The MetaHandlers one codec runs over TTHeader key-values, in both directions.

    Args:
        handlers: the handlers, in order (usually :func:`meta_handlers`).

    Not thread-safe (the caches are per process, used from one event loop); every method
    returns at once. Errors are the handlers' own.
    """

    __slots__ = (
        "_last_call",
        "_last_framed",
        "_last_read_request",
        "_last_read_request_raw",
        "_last_read_response",
        "_last_read_response_raw",
        "_last_reply",
        "_last_reply_protocol",
        "_last_reply_type",
        "_last_reply_unimplemented",
        "_last_request",
        "cacheable",
        "handlers",
    )

    def __init__(self, handlers: tuple[MetaHandler, ...]) -> None:
        self.handlers = handlers
        #: Only the built-in handler runs, so its results may be cached.
        self.cacheable = handlers == (BUILTIN_META_HANDLER,)
        # The last request body written, and the call it was for: a client usually
        # makes call after call with the very same method, metadata and timeout objects,
        # which identity comparisons recognise without building and hashing a cache key.
        self._last_call: CallStarted | None = None
        self._last_framed = False
        self._last_request = b""
        # The last reply body written, for replies without metadata.
        self._last_reply_protocol = -1
        self._last_reply_type = -1
        self._last_reply_unimplemented = False
        self._last_reply: tuple[bytes, bool] = (b"", False)
        # What was read last from a received header, by its ``raw`` body object: a
        # decoded header's ``raw`` is the same object for the same bytes (see
        # decode_ttheader), so a run of equal headers is recognised by identity.
        self._last_read_request_raw = b""
        self._last_read_request: RequestInfo = ("", (), None)
        self._last_read_response_raw = b""
        self._last_read_response: MetadataPairs = ()

    def read_request(
        self, method: str, oneway: bool, framed: bool, header: TTHeader
    ) -> RequestInfo:
        """``(service, metadata, timeout)`` the handlers read from a request header."""
        raw = header.raw
        cacheable = self.cacheable and raw
        if cacheable:
            if raw is self._last_read_request_raw:
                return self._last_read_request
            cached = _READ_REQUESTS.get(raw)
            if cached is not None:
                self._last_read_request_raw = raw
                self._last_read_request = cached
                return cached
        request = RequestMeta(method=method, oneway=oneway, framed=framed)
        # Copies: a received header's dicts may be shared with the decode cache.
        fields = HeaderFields(dict(header.int_info), dict(header.str_info))
        for handler in self.handlers:
            handler.read_request(fields, request)
        result = (request.service, tuple(request.metadata), request.timeout)
        if cacheable:
            _remember(_READ_REQUESTS, raw, result)
            self._last_read_request_raw = raw
            self._last_read_request = result
        return result

    def read_response(self, message_type: int, header: TTHeader) -> MetadataPairs:
        """The metadata the handlers read from a reply header."""
        raw = header.raw
        cacheable = self.cacheable and raw
        if cacheable:
            if raw is self._last_read_response_raw:
                return self._last_read_response
            cached = _READ_RESPONSES.get(raw)
            if cached is not None:
                self._last_read_response_raw = raw
                self._last_read_response = cached
                return cached
        response = ResponseMeta(message_type=message_type)
        fields = HeaderFields(dict(header.int_info), dict(header.str_info))
        for handler in self.handlers:
            handler.read_response(fields, response)
        read = tuple(response.metadata)
        if cacheable:
            _remember(_READ_RESPONSES, raw, read)
            self._last_read_response_raw = raw
            self._last_read_response = read
        return read

    def request_body(self, call: CallStarted, framed: bool) -> bytes:
        """The TTHeader body (key-values, padded) the handlers write for ``call``."""
        key = None
        if self.cacheable and type(call.metadata) is tuple:
            last = self._last_call
            if (
                last is not None
                and last.method is call.method
                and last.metadata is call.metadata
                and last.service is call.service
                and last.timeout == call.timeout
                and last.oneway == call.oneway
                and self._last_framed == framed
            ):
                return self._last_request
            key = (call.service, call.method, call.metadata, call.timeout, call.oneway, framed)
            cached = _REQUEST_HEADERS.get(key)
            if cached is not None:
                self._remember_request(call, framed, cached)
                return cached
        request = RequestMeta(
            method=call.method,
            service=call.service,
            timeout=call.timeout,
            metadata=list(call.metadata),
            oneway=call.oneway,
            framed=framed,
        )
        fields = HeaderFields()
        for handler in self.handlers:
            handler.write_request(request, fields)
        body = encode_header_body(PROTOCOL_THRIFT_BINARY, fields.str_info, fields.int_info)
        if key is not None and len(body) <= CACHEABLE_SIZE:
            _remember(_REQUEST_HEADERS, key, body)
            self._remember_request(call, framed, body)
        return body

    def _remember_request(self, call: CallStarted, framed: bool, body: bytes) -> None:
        self._last_call = call
        self._last_framed = framed
        self._last_request = body

    def response_body(
        self,
        protocol_id: int,
        message_type: int,
        status: Status,
        text: str,
        metadata: list[tuple[str, MetadataValue]],
    ) -> tuple[bytes, bool]:
        """The TTHeader body the handlers write for a reply, and whether it says
        ``crrst``."""
        key = None
        if self.cacheable:
            unimplemented = status is _UNIMPLEMENTED
            if (
                not metadata
                and protocol_id == self._last_reply_protocol
                and message_type == self._last_reply_type
                and unimplemented == self._last_reply_unimplemented
            ):
                return self._last_reply
            key = (protocol_id, message_type, unimplemented, tuple(metadata))
            cached = _RESPONSE_HEADERS.get(key)
            if cached is not None:
                if not metadata:
                    self._last_reply_protocol = protocol_id
                    self._last_reply_type = message_type
                    self._last_reply_unimplemented = unimplemented
                    self._last_reply = cached
                return cached
        response = ResponseMeta(
            message_type=message_type, status=status, message=text, metadata=metadata
        )
        fields = HeaderFields()
        for handler in self.handlers:
            handler.write_response(response, fields)
        body = encode_header_body(protocol_id, fields.str_info, fields.int_info)
        result = (body, CONNECTION_RESET in fields.str_info)
        if key is not None and len(body) <= CACHEABLE_SIZE:
            _remember(_RESPONSE_HEADERS, key, result)
        return result
