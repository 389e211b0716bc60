"""grpcio (``grpc.aio``) against tether's gRPC, both directions: the shared gRPC cases."""

from __future__ import annotations

import pytest

from ..grpc.cases import GrpcCases
from ..grpc.endpoints import TetherDriver, serve_tether
from .grpc_peers import GrpcioDriver, serve_grpcio

pytestmark = pytest.mark.interop


class TestGrpcioClientTetherServer(GrpcCases):
    """A grpcio client calls a tether server."""

    serve = staticmethod(serve_tether)
    connect = staticmethod(GrpcioDriver)


class TestTetherClientGrpcioServer(GrpcCases):
    """A tether client calls a grpcio server."""

    serve = staticmethod(serve_grpcio)
    connect = staticmethod(TetherDriver)
