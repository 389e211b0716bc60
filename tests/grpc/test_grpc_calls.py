"""tether's gRPC client against tether's gRPC server over TCP: the shared gRPC cases."""

from __future__ import annotations

from .cases import GrpcCases
from .endpoints import TetherDriver, serve_tether


class TestTetherToTether(GrpcCases):
    """Both ends are tether."""

    serve = staticmethod(serve_tether)
    connect = staticmethod(TetherDriver)
