"""grpclib against tether's gRPC, both directions: the shared gRPC cases."""

from __future__ import annotations

import pytest

from ..grpc.cases import GrpcCases
from ..grpc.endpoints import TetherDriver, serve_tether
from .grpc_peers import GrpclibDriver, serve_grpclib

pytestmark = pytest.mark.interop


class TestGrpclibClientTetherServer(GrpcCases):
    """A grpclib client calls a tether server."""

    serve = staticmethod(serve_tether)
    connect = staticmethod(GrpclibDriver)


class TestTetherClientGrpclibServer(GrpcCases):
    """A tether client calls a grpclib server (which cancels in-flight calls on close)."""

    serve = staticmethod(serve_grpclib)
    connect = staticmethod(TetherDriver)
