"""TLS: contexts from TLSConfig, mTLS, name checks, handshake timeouts, the wrapper."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from tether import ConfigError, ConnectError
from tether.testing import check_transport, memory_connection_pair
from tether.transport import (
    Connection,
    ConnectOptions,
    ListenOptions,
    TLSConfig,
    TLSConnection,
    TLSTransport,
    create_ssl_context,
    get_transport,
    parse_address,
    register_transport,
    wrap_tls,
)

from .conftest import Certs, Collector, dial, serving

TLS_KINDS = ["tls://127.0.0.1:0", "tls+unix://{dir}/tls.sock", "tls+memory://tls-{id}"]


def url_for(template: str, sock_dir: Path, unique: str) -> str:
    return template.format(dir=sock_dir, id=unique)


async def echo_once(conn: Connection, mine: Collector, server: Collector, data: bytes) -> None:
    """Send ``data``; the server side collector's connection answers it back."""
    conn.write_binary(data)
    conn.flush()
    await server.until(lambda: len(server.data) >= len(data))
    assert server.conn is not None
    server.conn.write_binary(bytes(server.data))
    server.conn.flush()
    await mine.until(lambda: len(mine.data) >= len(data))
    assert mine.data == data


async def close(conn: Connection) -> None:
    conn.close()
    async with asyncio.timeout(5):
        await conn.wait_closed()


# -- mTLS --------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TLS_KINDS)
async def test_mtls_accepts_a_client_certificate_from_the_ca(
    template: str, certs: Certs, sock_dir: Path, unique: str
) -> None:
    """A server with ``ca`` set accepts a client whose certificate that CA signed."""
    async with serving(url_for(template, sock_dir, unique), certs.listen(mtls=True)) as (
        listener,
        accepted,
    ):
        conn, mine = await dial(listener.address, certs.connect(client_cert=certs.client))
        await mine.until(lambda: "active" in mine.events)
        server_conn, server = await accepted.first()
        await echo_once(conn, mine, server, b"hello")
        peercert = server_conn.extra("peercert")
        assert ("DNS", "client.test") in peercert["subjectAltName"]
        await close(conn)


@pytest.mark.parametrize("template", TLS_KINDS)
@pytest.mark.parametrize("client_cert", ["none", "other CA"])
async def test_mtls_refuses_clients_without_a_valid_certificate(
    template: str, client_cert: str, certs: Certs, sock_dir: Path, unique: str
) -> None:
    """A server with ``ca`` set never hands over a client without a certificate from that
    CA; the client fails (ConnectError, or, as TLS 1.3 checks the client certificate after
    the client's handshake finished, the connection ends before any answer) and the server
    goes on serving other clients."""
    cert = None if client_cert == "none" else certs.other_client
    async with serving(url_for(template, sock_dir, unique), certs.listen(mtls=True)) as (
        listener,
        accepted,
    ):
        try:
            conn, mine = await dial(listener.address, certs.connect(client_cert=cert))
        except ConnectError:
            pass
        else:
            conn.write_binary(b"let me in")
            conn.flush()
            await mine.until(lambda: "inactive" in mine.events)
            assert mine.data == b"", "a refused client received application data"
            if template.startswith("tls+memory"):  # the wrapper surfaces the TLS alert
                assert isinstance(mine.exc, Exception)
                assert isinstance(mine.exc.__cause__, ssl.SSLError), repr(mine.exc)
        await asyncio.sleep(0.05)
        assert accepted == [], "the server handed over a connection that failed mTLS"
        good, good_mine = await dial(listener.address, certs.connect(client_cert=certs.client))
        _, server = await accepted.first()
        await echo_once(good, good_mine, server, b"ok")
        await close(good)


async def test_tls12_client_certificate_rejection_is_a_connect_error(certs: Certs) -> None:
    """With TLS 1.2 the server rejects a missing client certificate inside the client's
    handshake, so wrap_tls raises ConnectError on both sides."""
    server_ctx = create_ssl_context(certs.listen(mtls=True).tls, server_side=True)
    client_ctx = ssl.create_default_context(cafile=str(certs.ca))
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    a, b = memory_connection_pair()
    results = await asyncio.gather(
        wrap_tls(a, client_ctx, server_hostname="localhost", handshake_timeout=5),
        wrap_tls(b, server_ctx, server_side=True, handshake_timeout=5),
        return_exceptions=True,
    )
    assert all(isinstance(r, ConnectError) for r in results), results
    assert isinstance(results[0], ConnectError)
    assert isinstance(results[0].__cause__, ssl.SSLError)
    for conn in (a, b):
        await conn.wait_closed()


# -- server identity -----------------------------------------------------------------------


@pytest.mark.parametrize("template", TLS_KINDS)
async def test_server_name_mismatch_is_a_connect_error(
    template: str, certs: Certs, sock_dir: Path, unique: str
) -> None:
    """A certificate that does not name the server fails the client's connect."""
    async with serving(url_for(template, sock_dir, unique), certs.listen()) as (
        listener,
        accepted,
    ):
        with pytest.raises(ConnectError) as info:
            await dial(listener.address, certs.connect(server_name="not-the-server.test"))
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert accepted == []
        conn, _ = await dial(listener.address, certs.connect())  # still serving
        await close(conn)


@pytest.mark.parametrize("template", TLS_KINDS)
async def test_untrusted_server_is_a_connect_error_unless_verify_is_off(
    template: str, certs: Certs, sock_dir: Path, unique: str
) -> None:
    """A server certificate from an unknown CA fails; ``verify=False`` accepts it."""
    async with serving(url_for(template, sock_dir, unique), certs.listen()) as (listener, _):
        untrusting = ConnectOptions(tls=TLSConfig(ca=certs.other_ca, server_name="localhost"))
        with pytest.raises(ConnectError):
            await dial(listener.address, untrusting)
        conn, _ = await dial(listener.address, ConnectOptions(tls=TLSConfig(verify=False)))
        assert conn.extra("ssl_object") is not None
        await close(conn)


@pytest.mark.parametrize("template", TLS_KINDS)
async def test_alpn_and_extras(template: str, certs: Certs, sock_dir: Path, unique: str) -> None:
    """ALPN is negotiated; extra() exposes scheme, ssl_object, peercert and the protocol."""
    url = url_for(template, sock_dir, unique)
    alpn = ("tether/1", "h2")
    async with serving(url, certs.listen(alpn=alpn)) as (listener, accepted):
        conn, mine = await dial(listener.address, certs.connect(alpn=("tether/1",)))
        server_conn, server = await accepted.first()
        await echo_once(conn, mine, server, b"x")
        scheme = parse_address(url).scheme
        for side in (conn, server_conn):
            assert side.extra("scheme") == scheme
            assert side.extra("alpn_protocol") == "tether/1"
            assert isinstance(side.extra("ssl_object"), ssl.SSLObject)
        assert ("DNS", "localhost") in conn.extra("peercert")["subjectAltName"]
        assert server_conn.extra("peercert") in (None, {})  # no client certificate
        await close(conn)


# -- handshake timeouts --------------------------------------------------------------------


async def test_native_tls_server_drops_a_silent_client(certs: Certs) -> None:
    """A client that never starts the handshake is closed after tls_handshake_timeout."""
    options = dataclasses.replace(certs.listen(), tls_handshake_timeout=0.2)
    async with serving("tls://127.0.0.1:0", options) as (listener, accepted):
        address = parse_address(listener.address)
        loop = asyncio.get_running_loop()
        with socket.create_connection((address.host, address.port)) as raw:
            raw.setblocking(False)
            started = time.monotonic()
            async with asyncio.timeout(5):
                data = await loop.sock_recv(raw, 1024)
            assert data == b""  # closed by the server
            assert time.monotonic() - started < 3
        assert accepted == []


async def test_wrapped_tls_server_drops_a_silent_client(
    certs: Certs, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TLSTransport closes a connection whose handshake times out, logging at debug."""
    caplog.set_level(logging.DEBUG, logger="tether.transport")
    options = dataclasses.replace(certs.listen(), tls_handshake_timeout=0.2)
    async with serving(f"tls+memory://{unique}", options) as (_, accepted):
        _, mine = await dial(f"memory://{unique}", ConnectOptions())  # the inner listener
        await mine.until(lambda: "inactive" in mine.events)
        assert accepted == []
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("scheme", ["tls", "tls+memory"])
async def test_client_handshake_timeout_is_a_connect_error(
    scheme: str, certs: Certs, unique: str
) -> None:
    """Dialing TLS to a server that never answers the ClientHello fails within the timeout."""
    plain = "tcp://127.0.0.1:0" if scheme == "tls" else f"memory://{unique}"
    async with serving(plain, ListenOptions()) as (listener, _):
        target = scheme + listener.address[listener.address.index(":") :]
        started = time.monotonic()
        with pytest.raises(ConnectError, match="timed out"):
            await dial(target, certs.connect(connect_timeout=0.3))
        assert time.monotonic() - started < 2


async def test_tls_client_against_a_plaintext_echo_fails(certs: Certs) -> None:
    """A TLS client talking to a plaintext echo server gets ConnectError, not a hang."""

    class Echo(Collector):
        def on_read(self, conn: Connection) -> None:
            conn.write_binary(conn.reader.read_binary(len(conn.reader)))
            conn.flush()

    async with serving("tcp://127.0.0.1:0", ListenOptions(), Echo) as (listener, _):
        target = "tls" + listener.address[3:]
        with pytest.raises(ConnectError):
            await dial(target, certs.connect(connect_timeout=5))


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("template", TLS_KINDS)
async def test_tls_listener_needs_a_certificate(template: str, sock_dir: Path, unique: str) -> None:
    """Listening on a TLS scheme without ListenOptions.tls (or without cert) is a ConfigError."""
    url = url_for(template, sock_dir, unique)
    transport = get_transport(parse_address(url).scheme)
    with pytest.raises(ConfigError):
        await transport.listen(parse_address(url), ListenOptions(), lambda conn: None)
    with pytest.raises(ConfigError):
        await transport.listen(
            parse_address(url), ListenOptions(tls=TLSConfig(ca=Path("/nope"))), lambda c: None
        )


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:1", "unix:///tmp/none.sock", "memory://none"])
async def test_plain_schemes_refuse_tls_options(url: str, certs: Certs) -> None:
    """TLS is chosen by the scheme: TLS options on a plaintext URL are a ConfigError."""
    transport = get_transport(parse_address(url).scheme)
    with pytest.raises(ConfigError, match="tls"):
        await transport.connect(parse_address(url), certs.connect())
    with pytest.raises(ConfigError, match="tls"):
        await transport.listen(parse_address(url), certs.listen(), lambda conn: None)


async def test_tls_over_unix_needs_a_server_name(certs: Certs, sock_dir: Path) -> None:
    """tls+unix:// has no host to verify, so the client must set server_name (or verify=False)."""
    options = ConnectOptions(tls=TLSConfig(ca=certs.ca))
    with pytest.raises(ConfigError, match="server_name"):
        await get_transport("tls+unix").connect(
            parse_address(f"tls+unix://{sock_dir}/x.sock"), options
        )


def test_unreadable_certificate_files_are_config_errors(tmp_path: Path) -> None:
    """Missing or invalid PEM files raise ConfigError naming the problem."""
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="invalid TLS configuration"):
        create_ssl_context(TLSConfig(cert=missing, key=missing), server_side=True)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError):
        create_ssl_context(TLSConfig(ca=garbage), server_side=False)


def test_context_settings(certs: Certs) -> None:
    """Server contexts require client certificates when ``ca`` is set and issue no session
    tickets; clients verify by default and not at all with ``verify=False``."""
    server = create_ssl_context(certs.listen(mtls=True).tls, server_side=True)
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert server.num_tickets == 0
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    plain_server = create_ssl_context(certs.listen().tls, server_side=True)
    assert plain_server.verify_mode == ssl.CERT_NONE
    client = create_ssl_context(certs.connect().tls, server_side=False)
    assert client.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    lax = create_ssl_context(TLSConfig(verify=False), server_side=False)
    assert lax.verify_mode == ssl.CERT_NONE
    assert not lax.check_hostname


def test_contexts_are_cached_until_the_files_change(certs: Certs, tmp_path: Path) -> None:
    """The same TLSConfig reuses its context; touching a PEM file rebuilds it (rotation)."""
    pem = tmp_path / "server.pem"
    pem.write_bytes(certs.server.read_bytes())
    config = TLSConfig(cert=pem, key=pem)
    first = create_ssl_context(config, server_side=True)
    assert create_ssl_context(config, server_side=True) is first
    stat = pem.stat()
    os.utime(pem, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert create_ssl_context(config, server_side=True) is not first


# -- the wrapper ---------------------------------------------------------------------------


async def test_wrap_tls_over_a_memory_pair(certs: Certs) -> None:
    """wrap_tls (Hertz AddTLS) secures any connection: both sides wrap, talk, half-close."""
    client_ctx = create_ssl_context(certs.connect().tls, server_side=False)
    server_ctx = create_ssl_context(certs.listen().tls, server_side=True)
    a, b = memory_connection_pair()
    client, server = await asyncio.gather(
        wrap_tls(a, client_ctx, server_hostname="localhost"),
        wrap_tls(b, server_ctx, server_side=True),
    )
    assert isinstance(client, TLSConnection)
    assert client.inner is a
    assert client.extra("scheme") == "tls+memory"
    assert client.extra("cipher") is not None
    cc, sc = Collector(), Collector()
    client.start(cc)
    server.start(sc)
    await echo_once(client, cc, sc, b"secret" * 1000)
    client.write_eof()
    await sc.until(lambda: "eof" in sc.events)
    server.write_binary(b"bye")
    server.flush()
    server.close()
    await cc.until(lambda: "eof" in cc.events and cc.data.endswith(b"bye"))
    client.close()
    async with asyncio.timeout(5):
        await client.wait_closed()
        await server.wait_closed()
    assert cc.events[-1] == "inactive"
    assert sc.events[-1] == "inactive"


async def test_cancelling_a_handshake_aborts_the_inner_connection(certs: Certs) -> None:
    """Cancelling wrap_tls leaves no half-open inner connection behind."""
    client_ctx = create_ssl_context(certs.connect().tls, server_side=False)
    a, b = memory_connection_pair()  # nobody answers on b
    b.start(Collector())
    task = asyncio.create_task(wrap_tls(a, client_ctx, server_hostname="localhost"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.is_closing()
    async with asyncio.timeout(5):
        await a.wait_closed()
        await b.wait_closed()


async def test_start_before_the_handshake_is_an_error(certs: Certs) -> None:
    """A TLSConnection cannot be started before its handshake completed."""
    a, b = memory_connection_pair()
    conn = TLSConnection(a, create_ssl_context(None, server_side=False), server_side=False)
    with pytest.raises(RuntimeError, match="handshake"):
        conn.start(Collector())
    a.abort()
    b.abort()


async def test_tls_transport_over_a_custom_scheme(certs: Certs, unique: str) -> None:
    """TLSTransport adds TLS to a transport registered under any name (inner_scheme)."""
    scheme = f"secure-{unique}"
    register_transport(scheme, TLSTransport(get_transport("memory"), inner_scheme="memory"))
    report = await check_transport(
        f"{scheme}://{unique}",
        listen_options=certs.listen(),
        connect_options=certs.connect(),
        checks=["connect_and_listen", "half_close"],
    )
    assert report.passed == ("connect_and_listen", "half_close")


async def test_tls_transport_needs_to_know_its_inner_scheme() -> None:
    """A TLSTransport registered without a ``tls+`` prefix or inner_scheme is a ConfigError."""
    transport = TLSTransport(get_transport("memory"))
    with pytest.raises(ConfigError, match="inner scheme"):
        await transport.connect(parse_address("secure://x"), ConnectOptions())
