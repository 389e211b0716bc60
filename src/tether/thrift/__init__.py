"""Thrift services (thriftpy2 IDL loaded at run time) on tether's Server and Client.

The args and result structs of each IDL method travel as bare Thrift-binary structs
(Kitex's ``application/grpc+thrift`` convention): declared exceptions are fields of the
result struct, so they reach the client as the same exception class.
"""

from __future__ import annotations

from ._service import ThriftStub as ThriftStub, thrift_service as thrift_service

__all__ = ["ThriftStub", "thrift_service"]
