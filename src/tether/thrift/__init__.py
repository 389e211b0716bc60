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
"""

from __future__ import annotations

from ._load import load as load
from ._service import ThriftStub as ThriftStub, thrift_service as thrift_service

__all__ = ["ThriftStub", "load", "thrift_service"]
