"""MetaHandlers: what goes into and comes out of a TTHeader's key-values, sans-I/O.

A :class:`MetaHandler` is Kitex's ``MetaHandler`` (``kitex:pkg/transmeta``) without the
context: it sees a mutable :class:`HeaderFields` and a mutable request or response
description, on four hooks. The codec runs the built-in :class:`KitexTTHeaderHandler`
first, then every handler given to :func:`register_meta_handler`, in order, for each
TTHeader message (Framed and Buffered carry no header; Apache THeader carries its str
headers verbatim and runs no handler).

The built-in reproduces Kitex's ClientTTHeaderHandler, ServerTTHeaderHandler and the
metainfo handlers (``pkg/transmeta/ttheader.go``, ``metainfo.go``):

client, request (``write_request``)
    str KV: every metadata pair whose key does not start with ``:``, key verbatim
    (``RPC_TRANSIT_*``, ``RPC_PERSIST_*``, user keys), plus ``isn`` = the bare IDL service
    name (the part after the last dot: ``pbecho.EchoPB`` → ``EchoPB``) unless given. int KV: 3 FromService (``:from-service``), 20 FromMethod
    (``:from-method``), 6 ToService (``:to-service``, else the call's service), 9
    ToMethod, 22 MsgType (1 CALL / 4 ONEWAY), 1 TransportType (``framed`` /
    ``unframed``), 12 RPCTimeout (ms, only with a timeout); ``:int-<id>`` sets any other.
server, request (``read_request``)
    service = ``isn`` (the bare IDL name, as Kitex reads it), else ToService, else
    ``""``; timeout = RPCTimeout / 1000; metadata =
    every str pair verbatim, then int keys as pseudo-keys (``:transport-type``,
    ``:from-service``, ``:to-service``, ``:to-method``, ``:from-method``, ``:int-<id>``;
    RPCTimeout and MsgType are not repeated).
server, response (``write_response``)
    int 22 MsgType (2 REPLY / 3 EXCEPTION); str: the reply's metadata pairs verbatim
    (backward metainfo, ``biz-status`` / ``biz-message`` / ``biz-extra``), and
    ``crrst=1`` on an UNIMPLEMENTED exception, as Kitex sends for an unknown method.
client, response (``read_response``)
    metadata = every str pair verbatim, then int keys as pseudo-keys (MsgType left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mypy_extensions import mypyc_attr

from ..._status import Status
from ..._types import MetadataValue

# Kitex's int keys (gopkg:protocol/ttheader/metakey.go).
TRANSPORT_TYPE: Final = 1
FROM_SERVICE: Final = 3
TO_SERVICE: Final = 6
TO_METHOD: Final = 9
RPC_TIMEOUT: Final = 12
FROM_METHOD: Final = 20
MSG_TYPE: Final = 22

#: Str key naming the IDL service (``metakey.go`` HeaderIDLServiceName).
IDL_SERVICE_NAME: Final = "isn"
#: Str key a Kitex server sets when the client should drop the connection.
CONNECTION_RESET: Final = "crrst"

#: Pseudo-keys (metadata keys starting with ``:``) for Kitex's named int keys.
INT_KEY_NAMES: Final = {
    TRANSPORT_TYPE: ":transport-type",
    FROM_SERVICE: ":from-service",
    TO_SERVICE: ":to-service",
    TO_METHOD: ":to-method",
    FROM_METHOD: ":from-method",
}
_INT_KEY_FOR_NAME: Final = {name: key for key, name in INT_KEY_NAMES.items()}
#: Int keys the codec derives itself and never shows as metadata.
_DERIVED: Final = frozenset((RPC_TIMEOUT, MSG_TYPE))
_INT_PREFIX: Final = ":int-"
_UNIMPLEMENTED: Final = Status.UNIMPLEMENTED


def int_key_name(key: int) -> str:
    """The metadata pseudo-key for TTHeader int key ``key``."""
    return INT_KEY_NAMES.get(key) or f"{_INT_PREFIX}{key}"


def int_key_for(name: str) -> int | None:
    """The TTHeader int key a pseudo-key names (``None``: not an int-key pseudo-key)."""
    key = _INT_KEY_FOR_NAME.get(name)
    if key is not None:
        return key
    if name.startswith(_INT_PREFIX) and name[len(_INT_PREFIX) :].isdigit():
        number = int(name[len(_INT_PREFIX) :])
        return number if number <= 0xFFFF else None
    return None


class HeaderFields:
    """The key-values of one TTHeader, for handlers to read and fill.

    ``int_info`` maps Kitex int keys to strings; ``str_info`` maps str keys to values
    (str, or bytes written as they are).
    """

    __slots__ = ("int_info", "str_info")

    def __init__(
        self,
        int_info: dict[int, str] | None = None,
        str_info: dict[str, MetadataValue] | None = None,
    ) -> None:
        self.int_info: dict[int, str] = {} if int_info is None else int_info
        self.str_info: dict[str, MetadataValue] = {} if str_info is None else str_info

    def __repr__(self) -> str:
        return f"HeaderFields(int_info={self.int_info!r}, str_info={self.str_info!r})"


@dataclass(slots=True)
class RequestMeta:
    """A request as MetaHandlers see it.

    Client side: filled from the ``CallStarted``; ``write_request`` turns it into header
    fields. Server side: ``service`` / ``timeout`` / ``metadata`` start empty and
    ``read_request`` fills them; the codec then reports them in ``CallStarted``.
    ``framed`` is Kitex's Framed bit (the payload carries its own 4-byte length).
    """

    method: str
    service: str = ""
    timeout: float | None = None
    metadata: list[tuple[str, MetadataValue]] = field(default_factory=list)
    oneway: bool = False
    framed: bool = False


@dataclass(slots=True)
class ResponseMeta:
    """A response as MetaHandlers see it.

    Server side: the reply's status, message and metadata (Headers + Trailers) and the
    Thrift message type the codec chose; ``write_response`` turns it into header fields.
    Client side: ``read_response`` fills ``metadata`` from the header.
    """

    message_type: int
    status: Status = Status.OK
    message: str = ""
    metadata: list[tuple[str, MetadataValue]] = field(default_factory=list)


@mypyc_attr(allow_interpreted_subclasses=True)
class MetaHandler:
    """Reads and writes TTHeader key-values for one hook each; override what you need.

    Handlers run synchronously inside the codec, for every TTHeader message, in
    registration order after the built-in one. They must not block or raise except
    with :class:`~tether.LocalProtocolError` (the call fails) on the write hooks.
    """

    def write_request(self, request: RequestMeta, header: HeaderFields) -> None:
        """Client: fill ``header`` for an outgoing request."""

    def read_request(self, header: HeaderFields, request: RequestMeta) -> None:
        """Server: fill ``request`` from a received request's ``header``."""

    def write_response(self, response: ResponseMeta, header: HeaderFields) -> None:
        """Server: fill ``header`` for an outgoing reply."""

    def read_response(self, header: HeaderFields, response: ResponseMeta) -> None:
        """Client: fill ``response`` from a received reply's ``header``."""


@mypyc_attr(allow_interpreted_subclasses=True)
class KitexTTHeaderHandler(MetaHandler):
    """Kitex's Client/ServerTTHeaderHandler plus its metainfo handlers (see the module)."""

    def write_request(self, request: RequestMeta, header: HeaderFields) -> None:
        int_info = header.int_info
        str_info = header.str_info
        for key, value in request.metadata:
            if key[:1] != ":":
                str_info[key] = value
                continue
            int_key = int_key_for(key)
            if int_key is not None:
                int_info[int_key] = value if isinstance(value, str) else value.decode("latin-1")
        if request.service:
            # Kitex's isn is the bare IDL name: "pbecho.EchoPB" travels as "EchoPB".
            str_info.setdefault(IDL_SERVICE_NAME, request.service.rsplit(".", 1)[-1])
            int_info.setdefault(TO_SERVICE, request.service)
        int_info[TO_METHOD] = request.method
        int_info[MSG_TYPE] = "4" if request.oneway else "1"
        int_info[TRANSPORT_TYPE] = "framed" if request.framed else "unframed"
        if request.timeout is not None:
            int_info[RPC_TIMEOUT] = str(max(int(request.timeout * 1000), 1))

    def read_request(self, header: HeaderFields, request: RequestMeta) -> None:
        int_info = header.int_info
        service = header.str_info.get(IDL_SERVICE_NAME) or int_info.get(TO_SERVICE) or ""
        request.service = service if isinstance(service, str) else service.decode("latin-1")
        timeout = int_info.get(RPC_TIMEOUT)
        if timeout is not None and timeout.isdigit() and int(timeout) > 0:
            request.timeout = int(timeout) / 1000
        metadata = request.metadata
        metadata.extend(header.str_info.items())
        for key, value in int_info.items():
            if key not in _DERIVED:
                metadata.append((int_key_name(key), value))

    def write_response(self, response: ResponseMeta, header: HeaderFields) -> None:
        header.int_info[MSG_TYPE] = str(response.message_type)
        str_info = header.str_info
        for key, value in response.metadata:
            if key[:1] != ":":
                str_info[key] = value
        if response.message_type == 3 and response.status is _UNIMPLEMENTED:
            str_info[CONNECTION_RESET] = "1"

    def read_response(self, header: HeaderFields, response: ResponseMeta) -> None:
        metadata = response.metadata
        metadata.extend(header.str_info.items())
        for key, value in header.int_info.items():
            if key != MSG_TYPE:
                metadata.append((int_key_name(key), value))


BUILTIN_META_HANDLER: Final = KitexTTHeaderHandler()
_REGISTERED: list[MetaHandler] = []


def register_meta_handler(handler: MetaHandler) -> None:
    """Run ``handler`` after the built-in one in every TTHeader codec created from now on."""
    _REGISTERED.append(handler)


def unregister_meta_handler(handler: MetaHandler) -> None:
    """Stop running ``handler`` in codecs created from now on (no error if absent)."""
    if handler in _REGISTERED:
        _REGISTERED.remove(handler)


def meta_handlers() -> tuple[MetaHandler, ...]:
    """The handlers a new codec runs: the built-in one, then the registered ones."""
    return (BUILTIN_META_HANDLER, *_REGISTERED)
