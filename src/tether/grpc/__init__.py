"""gRPC on tether: protobuf services from ``*_pb2`` modules and Kitex conventions.

The wire protocol itself is the ``grpc`` framing (:mod:`tether.framing.grpc`): use
``Client(url, protocol="grpc")``; every :class:`~tether.Server` recognises gRPC
connections by the HTTP/2 preface. This package adds what sits above the wire:

* :func:`service_from_pb2` — serve a protobuf service declared in a protoc-generated
  ``*_pb2`` module (no grpcio needed at run time);
* :func:`stub` — typed client calls of such a service;
* :func:`metainfo_to_grpc_headers` / :func:`grpc_headers_to_metainfo` — Kitex's
  ``rpc-transit-*`` / ``rpc-persist-*`` metainfo headers.
"""

from __future__ import annotations

from ._metainfo import (
    grpc_headers_to_metainfo as grpc_headers_to_metainfo,
    metainfo_to_grpc_headers as metainfo_to_grpc_headers,
)
from ._protobuf import (
    ProtoMethod as ProtoMethod,
    proto_methods as proto_methods,
    service_descriptor as service_descriptor,
    service_from_pb2 as service_from_pb2,
    stub as stub,
)

__all__ = [
    "ProtoMethod",
    "grpc_headers_to_metainfo",
    "metainfo_to_grpc_headers",
    "proto_methods",
    "service_descriptor",
    "service_from_pb2",
    "stub",
]
