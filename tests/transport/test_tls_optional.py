"""tcp://host:port?tls=optional: plain and TLS clients on one port (first-byte sniffing),
and the conformance suite for TLS clients of such a listener."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import tether
from tether import ConfigError, ConnectError
from tether.testing import TRANSPORT_CHECKS, TransportAdapter, abort_with_reset, check_transport
from tether.transport import (
    Address,
    Connection,
    ConnectOptions,
    Listener,
    ListenOptions,
    OnConnection,
    TLSConfig,
    TLSConnection,
    Transport,
    create_ssl_context,
    get_transport,
    parse_address,
    register_transport,
)
from tether.transport._sniff import sniffing_acceptor

from .conftest import Certs, dial, serving


async def test_plain_and_tls_clients_on_one_port(certs: Certs) -> None:
    """A plain and a TLS client both exchange bytes with one ?tls=optional listener."""
    async with serving("tcp://127.0.0.1:0?tls=optional", certs.listen()) as (listener, accepted):
        port = parse_address(listener.address).port
        plain, plain_rec = await dial(f"tcp://127.0.0.1:{port}")
        plain.write_binary(b"plain hello")
        plain.flush()
        secure, secure_rec = await dial(f"tls://127.0.0.1:{port}", certs.connect())
        secure.write_binary(b"secret hello")
        secure.flush()
        async with asyncio.timeout(5):
            while len(accepted) < 2:  # the server finishes its handshake after the client
                accepted.arrived.clear()
                await accepted.arrived.wait()
        for _, collector in accepted:
            await collector.until(lambda c=collector: len(c.data) >= 11)
        by_data = {bytes(c.data): conn for conn, c in accepted}
        assert set(by_data) == {b"plain hello", b"secret hello"}
        assert by_data[b"plain hello"].extra("ssl_object") is None
        assert by_data[b"plain hello"].extra("scheme") == "tcp"
        assert by_data[b"secret hello"].extra("ssl_object") is not None
        assert by_data[b"secret hello"].extra("scheme") == "tls"
        for conn, _ in accepted:
            conn.write_binary(b"bye")
            conn.flush()
        await plain_rec.until(lambda: plain_rec.data == b"bye")
        await secure_rec.until(lambda: secure_rec.data == b"bye")
        plain.close()
        secure.close()


async def test_server_serves_both_kinds(certs: Certs) -> None:
    """tether.Server on ?tls=optional answers tcp:// and tls:// clients on the same port."""
    svc = tether.Service("test.Both")

    @svc.unary
    async def Where(request: Any, ctx: tether.ServerContext) -> Any:
        assert ctx.extra is not None
        return ctx.extra("scheme")

    server = tether.Server([svc], grace=1.0)
    await server.start("tcp://127.0.0.1:0?tls=optional", tls=TLSConfig(cert=certs.server))
    async with server:
        port = parse_address(server.addresses[0]).port
        async with tether.Client(f"tcp://127.0.0.1:{port}", timeout=5) as client:
            assert await client.unary("test.Both/Where", None) == "tcp"
        tls = TLSConfig(ca=certs.ca, server_name="localhost")
        async with tether.Client(f"tls://127.0.0.1:{port}", tls=tls, timeout=5) as client:
            assert await client.unary("test.Both/Where", None) == "tls"


async def test_failed_handshake_closes_only_that_connection(certs: Certs) -> None:
    """A TLS client that distrusts the certificate fails; plain clients still get through."""
    async with serving("tcp://127.0.0.1:0?tls=optional", certs.listen()) as (listener, accepted):
        port = parse_address(listener.address).port
        untrusting = ConnectOptions(tls=TLSConfig(ca=certs.other_ca, server_name="localhost"))
        with pytest.raises(ConnectError):
            await dial(f"tls://127.0.0.1:{port}", untrusting)
        plain, _ = await dial(f"tcp://127.0.0.1:{port}")
        plain.write_binary(b"ok")
        plain.flush()
        _, collector = await accepted.first()
        await collector.until(lambda: collector.data == b"ok")
        assert len(accepted) == 1
        plain.close()


async def test_garbage_after_a_tls_byte_closes_only_that_connection(certs: Certs) -> None:
    """A first byte of 0x16 followed by junk fails the handshake; the port keeps serving."""
    async with serving("tcp://127.0.0.1:0?tls=optional", certs.listen()) as (listener, accepted):
        port = parse_address(listener.address).port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x16\x03\x01\x00\x05hello, not a ClientHello")
        await reader.read()  # the server closes (after a TLS alert, if any)
        writer.close()
        plain, _ = await dial(f"tcp://127.0.0.1:{port}")
        plain.write_binary(b"fine")
        plain.flush()
        _, collector = await accepted.first()
        await collector.until(lambda: collector.data == b"fine")
        assert len(accepted) == 1
        plain.close()


async def test_configuration_errors(certs: Certs) -> None:
    """tls=optional needs ListenOptions.tls, and 'optional' is the only value."""
    tcp = get_transport("tcp")
    with pytest.raises(ConfigError, match=r"needs ListenOptions\.tls"):
        await tcp.listen(parse_address("tcp://127.0.0.1:0?tls=optional"), ListenOptions(), print)
    with pytest.raises(ConfigError, match="only value"):
        await tcp.listen(parse_address("tcp://127.0.0.1:0?tls=yes"), certs.listen(), print)
    assert tcp.uses_tls_for(parse_address("tcp://h:1?tls=optional"))
    assert not tcp.uses_tls_for(parse_address("tcp://h:1"))


# -- conformance with TLS clients --------------------------------------------------------


class _SniffedTLS(Transport):
    """``sniffed-tls://``: TLS (the wrapper) over tcp:// to a ?tls=optional listener
    (test-only glue so the suite's scheme checks see one name on both ends)."""

    uses_tls = True

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        assert options.tls is not None
        tcp = dataclasses.replace(address, url="tcp" + address.url[11:], scheme="tcp")
        inner = await get_transport("tcp").connect(tcp, dataclasses.replace(options, tls=None))
        context = create_ssl_context(options.tls, server_side=False)
        conn = TLSConnection(
            inner,
            context,
            server_side=False,
            server_hostname=options.tls.server_name,
            scheme="sniffed-tls",
        )
        await conn.handshake(options.connect_timeout)
        return conn

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        assert options.tls is not None
        accept = sniffing_acceptor(
            on_connection,
            scheme="tcp",
            tls_context=create_ssl_context(options.tls, server_side=True),
            accept_connect=False,
            timeout=options.tls_handshake_timeout,
            tls_scheme="sniffed-tls",
        )
        inner = dataclasses.replace(address, url="tcp" + address.url[11:], scheme="tcp")
        listener = await get_transport("tcp").listen(
            inner, dataclasses.replace(options, tls=None), accept
        )
        return _Renamed(listener)


class _Renamed(Listener):
    def __init__(self, inner: Listener) -> None:
        self._inner = inner

    @property
    def address(self) -> str:
        return "sniffed-tls" + self._inner.address[3:]

    async def aclose(self) -> None:
        await self._inner.aclose()


register_transport("sniffed-tls", _SniffedTLS(), replace=True)


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
async def test_conformance_with_tls_clients(check: str, certs: Certs) -> None:
    """TLS clients of a sniffing listener pass the whole conformance suite."""
    report = await check_transport(
        "sniffed-tls://127.0.0.1:0",
        listen_options=certs.listen(),
        connect_options=certs.connect(),
        checks=[check],
        large_size=4 << 20,
        # Over TCP: a peer killed with a reset must reach the survivor as a loss.
        adapter=TransportAdapter(reports_loss=True, kill=abort_with_reset),
    )
    assert report.passed == (check,), f"{check} was skipped: {report.skipped}"
