"""Interop fixtures: the gRPC tests' certificates."""

from __future__ import annotations

from ..grpc.conftest import tls_files as tls_files
