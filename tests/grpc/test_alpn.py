"""ALPN: a TLS server accepts ``h2`` (gRPC) and ``tether``; a gRPC client offers ``h2``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tether

from .conftest import TLSFiles


@pytest.fixture
async def tls_server(tls_files: TLSFiles) -> AsyncIterator[str]:
    """A TLS server whose one method returns the ALPN protocol of the caller's connection."""
    service = tether.Service("test.Alpn")

    @service.unary
    async def Protocol(request: bytes, ctx: tether.ServerContext) -> bytes:
        return str(ctx.extra("alpn_protocol")).encode()

    server = tether.Server([service])
    await server.start(
        "tls://127.0.0.1:0", tls=tether.TLSConfig(cert=tls_files.server, key=tls_files.server)
    )
    try:
        yield server.addresses[0]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("offered", [("h2",), ("tether",), ("spdy/3", "tether")])
async def test_server_accepts_h2_and_tether_by_default(
    tls_server: str, tls_files: TLSFiles, offered: tuple[str, ...]
) -> None:
    """Without ALPN settings a TLS listener selects h2 or tether, whichever is offered."""
    tls = tether.TLSConfig(ca=tls_files.ca, server_name="localhost", alpn=offered)
    async with tether.Client(tls_server, tls=tls) as client:
        assert await client.unary("test.Alpn/Protocol", b"") == offered[-1].encode()


async def test_no_alpn_offered_still_connects(tls_server: str, tls_files: TLSFiles) -> None:
    """A client that offers no ALPN is served as before (no protocol selected)."""
    tls = tether.TLSConfig(ca=tls_files.ca, server_name="localhost")
    async with tether.Client(tls_server, tls=tls) as client:
        assert await client.unary("test.Alpn/Protocol", b"") == b"None"
