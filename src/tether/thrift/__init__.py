"""Thrift services (thriftpy2 IDL loaded at run time) on tether's Server and Client.

* :func:`load` parses a ``.thrift`` file into a module (no code generation);
* :func:`thrift_service` serves a handler object as one of its services;
* :class:`ThriftStub` calls one with async methods named as in the IDL.

Over tether's protocol (and gRPC) the args and result structs of each method travel as
bare Thrift-binary structs (Kitex's ``application/grpc+thrift`` convention); over the
Thrift family (``Client(protocol="buffered" | "framed" | "ttheader" | "ttheader_framed" |
"theader")``) they are the body of a standard Thrift message, so plain Thrift and Kitex
peers interoperate. Declared exceptions are fields of the result struct, so they reach the
client as the same exception class.

TTHeader key-values are written and read by MetaHandlers (Kitex's): the built-in one
reproduces Kitex's ClientTTHeaderHandler / ServerTTHeaderHandler and the metainfo
handlers; :func:`register_meta_handler` adds your own (a :class:`MetaHandler` subclass
overriding any of ``write_request``, ``read_request``, ``write_response``,
``read_response``), run after the built-in one by every codec created afterwards.
"""

from __future__ import annotations

from ..framing.thrift import (
    HeaderFields as HeaderFields,
    MetaHandler as MetaHandler,
    RequestMeta as RequestMeta,
    ResponseMeta as ResponseMeta,
    register_meta_handler as register_meta_handler,
    unregister_meta_handler as unregister_meta_handler,
)
from ._errors import ThriftApplicationError as ThriftApplicationError
from ._load import load as load
from ._service import thrift_service as thrift_service
from ._stub import ThriftStub as ThriftStub

__all__ = [
    "HeaderFields",
    "MetaHandler",
    "RequestMeta",
    "ResponseMeta",
    "ThriftApplicationError",
    "ThriftStub",
    "load",
    "register_meta_handler",
    "thrift_service",
    "unregister_meta_handler",
]
