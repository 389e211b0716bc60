"""The schemas of the two demo services every ``tether serve demo`` exposes.

Protobuf: ``EchoRequest`` / ``EchoReply`` of package ``tether.demo`` (``echo.proto``,
compiled to ``echo_pb2``), served as :data:`PROTO_SERVICE`. Thrift: the ``echo_thrift``
module (``echo.thrift``, loaded by thriftpy2) with ``EchoRequest``, ``EchoReply``,
``EchoError`` and the ``Echo`` service, served as :data:`THRIFT_SERVICE`.
"""

from __future__ import annotations

from ._thrift import echo_thrift as echo_thrift
from .echo_pb2 import EchoReply as EchoReply, EchoRequest as EchoRequest

#: The protobuf service name (``package.Service``), as in gRPC paths ``/tether.demo.Echo/Unary``.
PROTO_SERVICE = "tether.demo.Echo"
#: The Thrift service name.
THRIFT_SERVICE = "Echo"

__all__ = ["PROTO_SERVICE", "THRIFT_SERVICE", "EchoReply", "EchoRequest", "echo_thrift"]
