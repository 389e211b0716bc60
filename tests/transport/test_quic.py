"""quic:// beyond the conformance suite: TLS and ALPN, connection loss as an error,
idle timeout and keepalive, refusal, configuration errors and bad datagrams."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from tether import BrokenResourceError, ConfigError, ConnectError
from tether.transport import ConnectOptions, ListenOptions, TLSConfig
from tether.transport._quic import QuicListener

from .conftest import Certs, dial, serving


async def _eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (a listener counter has no event to wait on) until it is true."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.01)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_exchange_reports_alpn_and_addresses(certs: Certs) -> None:
    """Bytes go both ways; ALPN defaults to "tether"; peername/sockname are the UDP ends."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, accepted):
        conn, coll = await dial(listener.address, certs.connect())
        conn.write_binary(b"hello")
        conn.flush()
        server, scoll = await accepted.first()
        await scoll.until(lambda: scoll.data == b"hello")
        server.write_binary(b"world")
        server.flush()
        await coll.until(lambda: coll.data == b"world")
        assert conn.extra("alpn_protocol") == "tether"
        assert server.extra("alpn_protocol") == "tether"
        assert conn.extra("peername")[:2] == server.extra("sockname")[:2]
        assert conn.extra("scheme") == "quic"
        conn.close()
        await conn.wait_closed()
        await scoll.until(lambda: "inactive" in scoll.events)
        assert scoll.exc is None, "an orderly close must reach the peer as a clean end"
        assert scoll.events[-2:] == ["eof", "inactive"]


async def test_alpn_from_the_url_and_mismatch(certs: Certs) -> None:
    """?alpn= picks the protocol; a client offering none the server accepts cannot connect."""
    async with serving("quic://127.0.0.1:0?alpn=rpc%2F2", certs.listen()) as (listener, _):
        good = listener.address.split("?")[0] + "?alpn=rpc/2"
        conn, _coll = await dial(good, certs.connect())
        assert conn.extra("alpn_protocol") == "rpc/2"
        conn.abort()
        with pytest.raises(ConnectError, match="handshake failed"):
            await dial(listener.address.split("?")[0], certs.connect(connect_timeout=5))


async def test_untrusted_server_is_a_connect_error(certs: Certs) -> None:
    """A server certificate from a CA the client does not trust fails the connect."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, accepted):
        options = ConnectOptions(tls=TLSConfig(ca=certs.other_ca), connect_timeout=5)
        with pytest.raises(ConnectError, match="handshake failed"):
            await dial(listener.address, options)
        assert not accepted, "a failed handshake was handed to on_connection"


async def test_nobody_listening_is_refused_via_icmp(certs: Certs) -> None:
    """Dialing a port nobody listens on fails from ICMP port unreachable, not a timeout."""
    address = f"quic://127.0.0.1:{_free_udp_port()}"
    with pytest.raises(ConnectError, match="unreachable"):
        await dial(address, certs.connect(connect_timeout=30))


async def test_closed_listener_refuses_while_connections_live(certs: Certs) -> None:
    """After aclose() the socket stays for open connections and new ones get CONNECTION_REFUSED."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, accepted):
        conn, _coll = await dial(listener.address, certs.connect())
        _server, scoll = await accepted.first()
        await listener.aclose()
        with pytest.raises(ConnectError, match="0x2"):
            await dial(listener.address, certs.connect(connect_timeout=30))
        conn.write_binary(b"still")
        conn.flush()
        await scoll.until(lambda: scoll.data == b"still")
        assert isinstance(listener, QuicListener)
        assert listener.connections == 1
        conn.close()
        await scoll.until(lambda: "inactive" in scoll.events)
        assert listener.connections == 0


async def test_peer_abort_is_an_error_not_eof(certs: Certs) -> None:
    """The peer's abort (CONNECTION_CLOSE with an error code) reaches on_inactive as Broken."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, accepted):
        conn, coll = await dial(listener.address, certs.connect())
        conn.write_binary(b"x")
        conn.flush()
        server, scoll = await accepted.first()
        await scoll.until(lambda: scoll.data == b"x")
        server.abort()
        await coll.until(lambda: "inactive" in coll.events)
        assert "eof" not in coll.events, "connection loss leaked through as a clean EOF"
        assert isinstance(coll.exc, BrokenResourceError)
        assert "0x1" in str(coll.exc)


async def test_idle_timeout_fails_the_connection(certs: Certs) -> None:
    """With keepalive off, a silent connection dies after idle_timeout with BrokenResourceError."""
    url = "quic://127.0.0.1:0?idle_timeout=0.3&keepalive=0"
    async with serving(url, certs.listen()) as (listener, accepted):
        conn, coll = await dial(listener.address, certs.connect())
        conn.write_binary(b"x")
        conn.flush()
        _server, scoll = await accepted.first()
        await coll.until(lambda: "inactive" in coll.events, timeout=10)
        await scoll.until(lambda: "inactive" in scoll.events, timeout=10)
        for exc in (coll.exc, scoll.exc):
            assert isinstance(exc, BrokenResourceError)
            assert "idle timeout" in str(exc)


async def test_keepalive_outlives_the_idle_timeout(certs: Certs) -> None:
    """PINGs every keepalive seconds keep an idle connection open past several idle timeouts."""
    url = "quic://127.0.0.1:0?idle_timeout=0.4&keepalive=0.1"
    async with serving(url, certs.listen()) as (listener, accepted):
        conn, coll = await dial(listener.address, certs.connect())
        conn.write_binary(b"a")
        conn.flush()
        server, scoll = await accepted.first()
        await scoll.until(lambda: scoll.data == b"a")
        await asyncio.sleep(1.5)
        assert "inactive" not in coll.events + scoll.events
        server.write_binary(b"b")
        server.flush()
        await coll.until(lambda: coll.data == b"b")
        conn.close()


async def test_garbage_and_oversize_datagrams_are_dropped(certs: Certs) -> None:
    """Random, truncated, unknown-version and 60 kB datagrams harm nothing; clients still connect."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, _accepted):
        assert isinstance(listener, QuicListener)
        host, port = "127.0.0.1", int(listener.address.rsplit(":", 1)[1])
        junk = [
            b"",
            b"\x00",
            os.urandom(20),
            b"\xc0" + os.urandom(1300),  # long header, version garbage
            b"\xc0\x00\x00\x00\x01\x08" + os.urandom(1300),  # Initial v1, bad lengths
            b"\x40" + os.urandom(40),  # short header, unknown connection id
            os.urandom(60_000),
            b"\xc0\x0a\x0a\x0a\x0a\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + bytes(1200),
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in junk * 5:
                sock.sendto(datagram, (host, port))
            await asyncio.sleep(0.1)
        assert listener.connections == 0
        assert listener.dropped > 0
        conn, coll = await dial(listener.address, certs.connect())
        conn.write_binary(b"fine")
        conn.flush()
        conn.close()
        await conn.wait_closed()
        assert coll.exc is None


async def test_truncated_handshake_is_dropped(certs: Certs) -> None:
    """A client that sends one Initial and vanishes is dropped after tls_handshake_timeout."""
    options = ListenOptions(tls=certs.listen().tls, tls_handshake_timeout=0.3)
    async with serving("quic://127.0.0.1:0", options) as (listener, accepted):
        assert isinstance(listener, QuicListener)
        port = int(listener.address.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for _ in range(3):
                half = QuicConnection(
                    configuration=QuicConfiguration(is_client=True, alpn_protocols=["tether"])
                )
                half.connect(("127.0.0.1", port), now=loop.time())
                for datagram, _addr in half.datagrams_to_send(now=loop.time()):
                    sock.sendto(datagram, ("127.0.0.1", port))
            await _eventually(lambda: listener.handshakes == 3)
            conn, _coll = await dial(listener.address, certs.connect())
            conn.write_binary(b"served")
            conn.flush()
            _server, scoll = await accepted.first()
            await scoll.until(lambda: scoll.data == b"served")
            await _eventually(lambda: listener.handshakes == 0)
        assert listener.connections == 1, "only the real client is left"
        assert len(accepted) == 1
        conn.abort()


async def test_handshake_backlog_is_bounded(certs: Certs) -> None:
    """Initials beyond ListenOptions.backlog concurrent handshakes are dropped, not queued."""
    options = ListenOptions(tls=certs.listen().tls, backlog=2, tls_handshake_timeout=5)
    async with serving("quic://127.0.0.1:0", options) as (listener, _accepted):
        assert isinstance(listener, QuicListener)
        port = int(listener.address.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(5):
                half = QuicConnection(
                    configuration=QuicConfiguration(is_client=True, alpn_protocols=["tether"])
                )
                half.connect(("127.0.0.1", port), now=loop.time())
                for datagram, _addr in half.datagrams_to_send(now=loop.time()):
                    sock.sendto(datagram, ("127.0.0.1", port))
            await _eventually(lambda: listener.handshakes + listener.dropped >= 5)
        assert listener.handshakes == 2


@pytest.mark.parametrize(
    ("url", "listen", "complaint"),
    [
        ("quic://127.0.0.1:0?idle_timeout=soon", True, "not a number"),
        ("quic://127.0.0.1:0?idle_timeout=0", True, "idle_timeout"),
        ("quic://127.0.0.1:0?keepalive=-1", True, "keepalive"),
        ("quic://127.0.0.1:0?max_datagram_size=1000", True, "max_datagram_size"),
        ("quic://127.0.0.1:0?max_datagram_size=big", True, "not an integer"),
        ("quic://127.0.0.1:0", False, "needs ListenOptions.tls"),
        ("quic://127.0.0.1", True, "host:port"),
    ],
)
async def test_configuration_errors(certs: Certs, url: str, listen: bool, complaint: str) -> None:
    """Bad options are a ConfigError naming the problem."""
    options = certs.listen() if listen else ListenOptions()
    with pytest.raises(ConfigError, match=complaint):
        async with serving(url, options):
            pass


async def test_tls_configuration_errors(certs: Certs, tmp_path: Path) -> None:
    """mTLS, a missing certificate file and a client certificate are ConfigErrors."""
    with pytest.raises(ConfigError, match="client certificates"):
        async with serving("quic://127.0.0.1:0", certs.listen(mtls=True)):
            pass
    missing = ListenOptions(tls=TLSConfig(cert=tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="invalid TLS"):
        async with serving("quic://127.0.0.1:0", missing):
            pass
    with pytest.raises(ConfigError, match="client certificates"):
        await dial("quic://127.0.0.1:1", certs.connect(client_cert=certs.client))


async def test_no_fd_or_task_leak(certs: Certs) -> None:
    """Connect/exchange/close-or-abort cycles and failed connects leave no fds or tasks."""
    from .test_leaks import _cycles, open_fds, settle

    url = "quic://127.0.0.1:0"
    async with serving(url, certs.listen()) as (listener, warmup):
        await _cycles(listener.address, certs.connect(), warmup, 1)
    await settle()
    fds_before = open_fds()
    tasks_before = len(asyncio.all_tasks())
    async with serving(url, certs.listen()) as (listener, accepted):
        await _cycles(listener.address, certs.connect(), accepted, 20)
        untrusted = ConnectOptions(tls=TLSConfig(ca=certs.other_ca), connect_timeout=5)
        for _ in range(5):
            with pytest.raises(ConnectError):
                await dial(listener.address, untrusted)
    for _ in range(5):
        with pytest.raises(ConnectError):
            await dial(f"quic://127.0.0.1:{_free_udp_port()}", certs.connect())
    await settle()
    assert len(asyncio.all_tasks()) == tasks_before, "tasks leaked"
    assert open_fds() == fds_before, f"fds leaked: {open_fds() - fds_before}"


async def test_silent_peer_times_out_and_cancel_cleans_up(certs: Certs) -> None:
    """A peer that never answers: connect_timeout gives ConnectError; cancelling leaks nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"quic://127.0.0.1:{silent.getsockname()[1]}"
        fds_before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(ConnectError, match="timed out"):
            await dial(address, certs.connect(connect_timeout=0.3))
        attempt = asyncio.ensure_future(dial(address, certs.connect()))
        await asyncio.sleep(0.1)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await asyncio.sleep(0.05)
        assert len(os.listdir("/proc/self/fd")) == fds_before, "the UDP socket leaked"


async def test_server_name_is_verified(certs: Certs) -> None:
    """The certificate must match server_name; verify=False skips the check (testing only)."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, _accepted):
        wrong = certs.connect(server_name="wrong.example", connect_timeout=5)
        with pytest.raises(ConnectError, match="handshake failed"):
            await dial(listener.address, wrong)
        unchecked = ConnectOptions(tls=TLSConfig(server_name="wrong.example", verify=False))
        conn, _coll = await dial(listener.address, unchecked)
        conn.close()
        await conn.wait_closed()


async def test_unknown_version_gets_version_negotiation(certs: Certs) -> None:
    """A full-size Initial with an unknown QUIC version is answered with Version Negotiation."""
    async with serving("quic://127.0.0.1:0", certs.listen()) as (listener, _accepted):
        port = int(listener.address.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(("127.0.0.1", port))
            dcid, scid = os.urandom(8), os.urandom(8)
            probe = b"\xc0\x0a\x0a\x0a\x0a\x08" + dcid + b"\x08" + scid + bytes(1200)
            sock.send(probe)
            async with asyncio.timeout(5):
                reply = await loop.sock_recv(sock, 2048)
        assert reply[1:5] == b"\x00\x00\x00\x00", "not a Version Negotiation packet"
        assert reply[6:14] == scid, "Version Negotiation must echo the client's connection id"
        assert b"\x00\x00\x00\x01" in reply[15:], "QUIC v1 is not offered"
