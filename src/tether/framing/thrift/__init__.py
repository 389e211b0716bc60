"""Kitex and Apache Thrift wire protocols, sans-I/O.

Framings (registry names): ``buffered`` (Kitex PurePayload), ``framed``, ``ttheader``,
``ttheader_framed``, ``kitex_protobuf`` (magic 0x9001, sent in TTHeaderFramed as Kitex
does) and ``theader`` (Apache THeader 0x0FFF). A server codec made by any of them serves
every one of these formats, per message, and replies in the request's format. Wire
details and the event mapping: ``docs/framings.md``.
"""

from __future__ import annotations

from ._binary import MessageType as MessageType, skip_struct as skip_struct
from ._codec import ThriftCodec as ThriftCodec
from ._envelope import Envelope as Envelope, Transport as Transport, read_envelope
from ._exception import (
    ApplicationErrorType as ApplicationErrorType,
    decode_application_exception as decode_application_exception,
    encode_application_exception as encode_application_exception,
    status_for_type as status_for_type,
    type_for_status as type_for_status,
)
from ._framings import FRAMINGS as FRAMINGS, classify as classify
from ._meta import (
    HeaderFields as HeaderFields,
    KitexTTHeaderHandler as KitexTTHeaderHandler,
    MetaHandler as MetaHandler,
    RequestMeta as RequestMeta,
    ResponseMeta as ResponseMeta,
    meta_handlers as meta_handlers,
    register_meta_handler as register_meta_handler,
    unregister_meta_handler as unregister_meta_handler,
)
from ._theader import THeader as THeader, decode_theader, encode_theader
from ._ttheader import TTHeader as TTHeader, decode_ttheader, encode_ttheader

__all__ = [
    "FRAMINGS",
    "ApplicationErrorType",
    "Envelope",
    "HeaderFields",
    "KitexTTHeaderHandler",
    "MessageType",
    "MetaHandler",
    "RequestMeta",
    "ResponseMeta",
    "THeader",
    "TTHeader",
    "ThriftCodec",
    "Transport",
    "classify",
    "decode_application_exception",
    "decode_theader",
    "decode_ttheader",
    "encode_application_exception",
    "encode_theader",
    "encode_ttheader",
    "meta_handlers",
    "read_envelope",
    "register_meta_handler",
    "skip_struct",
    "status_for_type",
    "type_for_status",
    "unregister_meta_handler",
]
