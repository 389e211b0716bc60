"""kcp:// beyond the conformance suite: handshake, demultiplexing, timers, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from typing import Any, cast

import pytest

from tether import BrokenResourceError, ConfigError, ConnectError, TransportError
from tether.transport import (
    Connection,
    ConnectOptions,
    ListenOptions,
    get_transport,
    parse_address,
)
from tether.transport._kcp import KCPListener, KCPSession
from tether.transport._kcp_settings import KCPSettings
from tether.transport._kcp_state import SessionState
from tether.transport._kcp_wire import (
    PacketType,
    encode_control,
    encode_header,
    encode_hello,
    encode_welcome,
    stream_messages,
)

from .conftest import Collector, dial, have_ipv6, serving
from .kcp_helpers import eventually, raw_peer
from .test_leaks import _cycles, open_fds, settle

FAST = "idle_timeout=1&heartbeat=0.2&write_timeout=1&handshake_timeout=0.5"


async def exchange(a: Connection, b_col: Collector, data: bytes) -> None:
    """``a`` writes ``data``; ``b_col``, the collector of the other end, receives it."""
    start = len(b_col.data)
    a.write_binary(data)
    a.flush()
    await b_col.until(lambda: len(b_col.data) >= start + len(data))
    assert bytes(b_col.data[start:]) == data


def kcp_listener(listener: object) -> KCPListener:
    assert isinstance(listener, KCPListener)
    return listener


# -- configuration -----------------------------------------------------------------------------


def test_settings_from_url() -> None:
    """Query parameters tune a session; unknown or bad ones are ConfigErrors."""
    settings = KCPSettings.from_address(
        parse_address("kcp://h:1?window=64&mtu=1200&idle_timeout=3&heartbeat=1")
    )
    assert (settings.send_window, settings.receive_window, settings.mtu) == (64, 64, 1200)
    assert (settings.idle_timeout, settings.heartbeat) == (3.0, 1.0)
    for bad in ("nope=1", "mtu=abc", "mtu=10", "heartbeat=5&idle_timeout=1", "window=8"):
        with pytest.raises(ConfigError):
            KCPSettings.from_address(parse_address(f"kcp://h:1?{bad}"))


async def test_tls_options_on_plain_kcp_are_refused() -> None:
    """TLS settings on a kcp:// URL are a ConfigError (use tls+kcp://)."""
    from tether.transport import TLSConfig

    transport = get_transport("kcp")
    with pytest.raises(ConfigError, match="tls\\+kcp"):
        await transport.connect(parse_address("kcp://127.0.0.1:9"), ConnectOptions(tls=TLSConfig()))


# -- sessions ----------------------------------------------------------------------------------


async def test_sessions_are_demultiplexed_with_distinct_conv_ids() -> None:
    """Several clients share one listener socket; each gets its own conv id and bytes."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        clients = [await dial(listener.address) for _ in range(5)]
        await accepted.first()
        await eventually(lambda: len(accepted) >= 5, timeout=5)
        convs = {conn.extra("kcp_conv") for conn, _ in clients}
        assert len(convs) == 5
        by_conv = {conn.extra("kcp_conv"): (conn, col) for conn, col in accepted}
        for i, (conn, _col) in enumerate(clients):
            _server, server_col = by_conv[conn.extra("kcp_conv")]
            assert isinstance(conn, KCPSession)
            await exchange(conn, server_col, f"client {i}".encode())
        assert kcp_listener(listener).sessions == 5
        for conn, _ in clients:
            conn.abort()


async def test_one_message_above_kcp_fragment_limit() -> None:
    """A single 1 MiB write (KCP alone refuses ~175 KB) is chunked and reassembled."""
    payload = random.Random(7).randbytes(1 << 20)
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        client, _ = await dial(listener.address)
        _, server_col = await accepted.first()
        client.write_binary(payload)
        client.flush()
        await server_col.until(lambda: len(server_col.data) >= len(payload), timeout=20)
        assert server_col.data == payload
        client.abort()


async def test_idle_session_sleeps_until_its_heartbeat() -> None:
    """Once everything is acknowledged, a session's only timer is the heartbeat, not a KCP tick."""
    async with serving("kcp://127.0.0.1:0?heartbeat=5") as (listener, accepted):
        assert listener.address.endswith("?heartbeat=5"), "the address lost its tuning"
        client, client_col = await dial(listener.address)
        server, server_col = await accepted.first()
        assert isinstance(client, KCPSession)
        assert isinstance(server, KCPSession)
        await exchange(client, server_col, b"hello")
        await exchange(server, client_col, b"world")
        loop = asyncio.get_running_loop()
        await eventually(
            lambda: (
                not client._kcp.get_outbound_packets() and not server._kcp.get_outbound_packets()
            ),
            timeout=5,
        )
        await asyncio.sleep(0.05)  # let a KCP tick armed before the last ack fire
        for session in (client, server):
            assert session._timer is not None
            assert session._timer_when - loop.time() > 1.0, "an idle session still ticks"
        client.abort()


async def test_write_eof_is_in_order_with_the_data() -> None:
    """The FIN travels inside KCP: on_eof comes after every byte, and the peer can reply."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        client, client_col = await dial(listener.address)
        server, server_col = await accepted.first()
        client.write_binary(b"x" * 300_000)
        client.write_eof()
        await server_col.until(lambda: "eof" in server_col.events, timeout=10)
        assert len(server_col.data) == 300_000
        server.write_binary(b"reply")
        server.flush()
        await client_col.until(lambda: client_col.data == b"reply")
        server.close()
        await client_col.until(lambda: "eof" in client_col.events)
        client.close()
        await client.wait_closed()
        await server.wait_closed()
        assert client_col.exc is None
        assert server_col.exc is None


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_listener_aclose_releases_the_socket_after_the_last_session() -> None:
    """aclose() returns at once and refuses new sessions (RESET: ConnectError at once); the
    port stays bound while a session uses it and is freed when the last one ends."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        port = parse_address(listener.address).port or 0
        client, _ = await dial(listener.address)
        await accepted.first()
        await listener.aclose()
        with pytest.raises(ConnectError, match="refused"):
            await get_transport("kcp").connect(
                parse_address(listener.address), ConnectOptions(connect_timeout=5)
            )
        assert not port_is_free(port), "the socket closed under a live session"
        client.abort()
        await eventually(lambda: port_is_free(port), timeout=5)


async def test_connect_to_nothing_is_connect_error() -> None:
    """Dialing a UDP port nobody listens on fails with ConnectError (ICMP or timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError):
        await get_transport("kcp").connect(
            parse_address(f"kcp://127.0.0.1:{port}"), ConnectOptions(connect_timeout=2)
        )


async def test_connect_timeout_when_nobody_answers() -> None:
    """A peer that swallows HELLOs: ConnectError after connect_timeout, socket closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        with pytest.raises(ConnectError, match="timed out"):
            await get_transport("kcp").connect(
                parse_address(f"kcp://127.0.0.1:{port}"), ConnectOptions(connect_timeout=0.5)
            )
        sink.settimeout(1)
        hellos = [sink.recv(100) for _ in range(2)]
        assert all(h[:4] == b"tK\x01\x01" for h in hellos), "HELLO was not resent"


# -- bad input -----------------------------------------------------------------------------------


async def test_garbage_and_oversize_datagrams_are_dropped() -> None:
    """Garbage, oversize and wrong-token datagrams are dropped and counted; the session
    they target keeps working."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        client, client_col = await dial(listener.address)
        server, server_col = await accepted.first()
        assert isinstance(client, KCPSession)
        assert isinstance(server, KCPSession)
        peer = await raw_peer(listener.address)
        rng = random.Random(11)
        conv = client.conv
        junk = [
            rng.randbytes(100),
            rng.randbytes(60_000),  # oversize and garbage
            encode_hello(5)[:20],  # truncated handshake
            encode_header(PacketType.DATA, conv, 999) + rng.randbytes(60_000),  # bad token
            encode_control(PacketType.RESET, conv, 999),  # a spoofed reset
            b"tK\x01\x04" + rng.randbytes(40),
        ]
        for datagram in junk:
            peer.send(datagram)
        before = kcp_listener(listener).dropped
        await exchange(client, server_col, b"still fine")
        await eventually(lambda: kcp_listener(listener).dropped > before, timeout=5)
        # The peer's packets arrive from another address, so they never reach the session.
        assert server.state is SessionState.OPEN
        await exchange(server, client_col, b"both ways")
        peer.close()
        client.abort()


async def test_malformed_kcp_inside_a_valid_session_is_dropped() -> None:
    """A DATA packet with the right token but broken KCP bytes is dropped, not fatal."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        peer = await raw_peer(listener.address)
        conv, token = await peer.handshake()
        server, server_col = await accepted.first()
        assert isinstance(server, KCPSession)
        bogus = conv.to_bytes(4, "little") + bytes([99]) + bytes(40)  # unknown KCP command
        peer.send(encode_header(PacketType.DATA, conv, token) + bogus)
        kcp = peer.kcp(conv, token)
        for message in stream_messages([b"after the junk"], 1000):
            kcp.enqueue(message)
        kcp.flush()
        await server_col.until(lambda: bytes(server_col.data) == b"after the junk")
        assert server.dropped == 1
        peer.close()


async def test_unknown_session_gets_reset() -> None:
    """Packets for a session the listener does not know are answered with RESET."""
    async with serving("kcp://127.0.0.1:0") as (listener, _accepted):
        peer = await raw_peer(listener.address)
        peer.send(encode_control(PacketType.PING, 77, 88))
        reset = await peer.packet_of(PacketType.RESET)
        assert (reset.conv, reset.token) == (77, 88)
        peer.send(encode_control(PacketType.CLOSE, 77, 88))
        assert (await peer.packet_of(PacketType.CLOSE_ACK)).conv == 77
        peer.close()


async def test_repeated_hello_gets_the_same_welcome() -> None:
    """A resent HELLO (its WELCOME was lost) gets the same conv and token, not a new session."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        peer = await raw_peer(listener.address)
        first = await peer.handshake(nonce=42, ready=False)
        second = await peer.handshake(nonce=42, ready=False)
        assert first == second
        assert kcp_listener(listener).sessions == 1
        assert not accepted, "a session was handed out before READY"
        peer.close()


async def test_truncated_handshake_expires() -> None:
    """A HELLO never followed by READY is never accepted and is forgotten after
    handshake_timeout."""
    async with serving(f"kcp://127.0.0.1:0?{FAST}") as (listener, accepted):
        peer = await raw_peer(listener.address)
        await peer.handshake(ready=False)
        assert kcp_listener(listener).sessions == 1
        await eventually(lambda: not kcp_listener(listener).sessions, timeout=5)
        assert not accepted
        peer.close()


async def test_half_open_peer_hits_the_idle_timeout() -> None:
    """A peer that completes the handshake then goes silent is dropped by the idle timeout
    with a BrokenResourceError; another session on the listener is unaffected."""
    async with serving(f"kcp://127.0.0.1:0?{FAST}") as (listener, accepted):
        peer = await raw_peer(listener.address)
        await peer.handshake()
        silent, silent_col = await accepted.first()
        client, _client_col = await dial(listener.address)
        await eventually(lambda: len(accepted) >= 2, timeout=5)
        _, other_col = accepted[1]
        waiter = asyncio.create_task(silent.wait_closed())
        await silent_col.until(lambda: "inactive" in silent_col.events, timeout=10)
        assert isinstance(silent_col.exc, BrokenResourceError)
        assert "idle timeout" in str(silent_col.exc)
        await waiter
        with pytest.raises(BrokenResourceError):
            await silent.drain()
        # The heartbeat kept the live session open past the idle timeout.
        assert isinstance(client, KCPSession)
        await exchange(client, other_col, b"alive")
        assert client.state is SessionState.OPEN
        peer.close()
        client.abort()


async def test_peer_that_stops_reading_hits_the_write_timeout() -> None:
    """A peer that answers heartbeats but stops reading: writes pause, then that session
    fails with a write-timeout BrokenResourceError; another session keeps working."""
    async with serving(f"kcp://127.0.0.1:0?{FAST}") as (listener, accepted):
        stuck, stuck_col = await dial(listener.address)
        stuck.pause_reading()
        server, server_col = await accepted.first()
        other, _other_col = await dial(listener.address)
        await eventually(lambda: len(accepted) >= 2, timeout=5)
        _, other_server_col = accepted[1]
        chunk = bytes(64 * 1024)
        for _ in range(1000):  # 64 MiB at most
            if server.is_write_paused():
                break
            server.write_binary(chunk)
            server.flush()
            await asyncio.sleep(0.01)
        assert server.is_write_paused(), "writes never paused for a peer that stopped reading"
        with pytest.raises(BrokenResourceError, match="write timeout"):
            async with asyncio.timeout(10):
                await server.drain()
        await server_col.until(lambda: "inactive" in server_col.events)
        assert isinstance(other, KCPSession)
        await exchange(other, other_server_col, b"unaffected")
        # The stuck client learns of it too (RESET), even though it is not reading.
        await stuck_col.until(lambda: "inactive" in stuck_col.events)
        assert isinstance(stuck_col.exc, BrokenResourceError)
        other.abort()


async def test_reset_from_peer_is_broken_resource() -> None:
    """abort() sends RESET: the peer's connection ends with BrokenResourceError at once."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        _client, client_col = await dial(listener.address)
        server, _server_col = await accepted.first()
        server.abort()
        await client_col.until(lambda: "inactive" in client_col.events)
        assert isinstance(client_col.exc, BrokenResourceError)
        assert "reset" in str(client_col.exc)
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_listen_errors() -> None:
    """Binding a port in use is a TransportError; a URL without a port a ConfigError."""
    transport = get_transport("kcp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(TransportError):
            await transport.listen(
                parse_address(f"kcp://127.0.0.1:{port}"), ListenOptions(), lambda c: None
            )
    with pytest.raises(ConfigError):
        await transport.listen(parse_address("kcp://127.0.0.1"), ListenOptions(), lambda c: None)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_no_fd_or_task_leak() -> None:
    """Many connect, exchange, close/abort cycles on kcp:// leave no sockets or tasks behind
    (client sockets close with their session; the listener's with the listener)."""
    url = "kcp://127.0.0.1:0"
    async with serving(url) as (listener, warmup):
        await _cycles(listener.address, None, warmup, 1)
    await settle()
    fds_before = open_fds()
    tasks_before = len(asyncio.all_tasks())
    async with serving(url) as (listener, accepted):
        await _cycles(listener.address, None, accepted, 30)
        assert kcp_listener(listener).sessions == 0
    await settle()
    assert len(asyncio.all_tasks()) == tasks_before, "tasks leaked"
    assert open_fds() == fds_before, f"fds leaked: {open_fds() - fds_before}"


async def test_peer_closed_session_waits_quietly_for_our_close() -> None:
    """After the peer's orderly close, our end stays open (TCP's CLOSE_WAIT) with no timer
    and no idle timeout; a write then breaks it like EPIPE."""
    async with serving(f"kcp://127.0.0.1:0?{FAST}") as (listener, accepted):
        client, _ = await dial(listener.address)
        server, server_col = await accepted.first()
        assert isinstance(server, KCPSession)
        client.close()
        await client.wait_closed()
        await server_col.until(lambda: "eof" in server_col.events)
        await eventually(lambda: server.state is SessionState.PEER_CLOSED)
        await eventually(lambda: server._timer is None)
        await asyncio.sleep(1.2)  # longer than idle_timeout
        assert server.state is SessionState.PEER_CLOSED
        assert "inactive" not in server_col.events
        server.write_binary(b"too late")
        server.flush()
        await server_col.until(lambda: "inactive" in server_col.events)
        assert isinstance(server_col.exc, BrokenResourceError)
        assert "closed" in str(server_col.exc)


async def test_peers_with_different_windows_and_mtus() -> None:
    """Settings are per side: a small-window, small-MTU server and a default client still
    move large writes both ways (messages fit any allowed window)."""
    payload = random.Random(3).randbytes(400_000)
    async with serving("kcp://127.0.0.1:0?window=16&mtu=600") as (listener, accepted):
        client, client_col = await dial(listener.address)
        server, server_col = await accepted.first()
        assert isinstance(client, KCPSession)
        assert isinstance(server, KCPSession)
        await exchange(client, server_col, payload)
        await exchange(server, client_col, payload[::-1])
        client.abort()


async def test_ipv6_loopback() -> None:
    """kcp://[::1]:0 listens on IPv6, reports a bracketed address, and carries bytes."""
    if not have_ipv6():
        pytest.skip("IPv6 loopback is unavailable")
    async with serving("kcp://[::1]:0") as (listener, accepted):
        assert listener.address.startswith("kcp://[::1]:")
        client, client_col = await dial(listener.address)
        server, server_col = await accepted.first()
        assert isinstance(client, KCPSession)
        assert isinstance(server, KCPSession)
        await exchange(client, server_col, b"over ipv6")
        await exchange(server, client_col, b"and back")
        client.abort()


class BadHandshakeServer(asyncio.DatagramProtocol):
    """Answers every HELLO with garbage, a truncated WELCOME and a WELCOME for another nonce."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.hellos = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.hellos += 1
        nonce = int.from_bytes(data[8:16], "big")
        for reply in (
            b"garbage",
            encode_welcome(5, nonce, 9)[:-3],  # truncated
            encode_welcome(5, nonce ^ 1, 9),  # not our nonce
        ):
            self.transport.sendto(reply, addr)


async def test_client_ignores_bogus_handshake_replies() -> None:
    """Garbage, a truncated WELCOME and a WELCOME for another nonce do not establish a
    session: the client keeps sending HELLO and gives up with ConnectError."""
    loop = asyncio.get_running_loop()
    transport, fake = await loop.create_datagram_endpoint(
        BadHandshakeServer, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        with pytest.raises(ConnectError, match="timed out"):
            await get_transport("kcp").connect(
                parse_address(f"kcp://127.0.0.1:{port}"), ConnectOptions(connect_timeout=1.5)
            )
        assert fake.hellos >= 3, "the client stopped resending HELLO"
    finally:
        transport.close()


async def test_server_restart_resets_the_client() -> None:
    """After the server's socket vanishes and a new listener takes the port, the client's
    next packet gets RESET: the connection fails fast instead of hanging (rpcx's trap)."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        address = listener.address
        client, client_col = await dial(address)
        await accepted.first()
        transport = kcp_listener(listener).transport
        assert transport is not None
        transport.close()  # the "crash": no RESET, no CLOSE reaches the client
    async with serving(address) as (_new_listener, new_accepted):
        client.write_binary(b"anyone there?")
        client.flush()
        await client_col.until(lambda: "inactive" in client_col.events)
        assert isinstance(client_col.exc, BrokenResourceError)
        assert "reset" in str(client_col.exc)
        assert not new_accepted


async def test_wrong_token_from_the_right_address_is_dropped() -> None:
    """A RESET or CLOSE naming a live session's address and conv but the wrong token is
    dropped: the session survives and still answers PING."""
    async with serving("kcp://127.0.0.1:0") as (listener, accepted):
        peer = await raw_peer(listener.address)
        conv, token = await peer.handshake()
        server, server_col = await accepted.first()
        assert isinstance(server, KCPSession)
        before = kcp_listener(listener).dropped
        for type_ in (PacketType.RESET, PacketType.CLOSE):
            peer.send(encode_control(type_, conv, token ^ 1))
        peer.send(encode_control(PacketType.PING, conv, token))
        pong = await peer.packet_of(PacketType.PONG)
        assert (pong.conv, pong.token) == (conv, token)
        assert kcp_listener(listener).dropped == before + 2
        assert server.state is SessionState.OPEN
        assert "inactive" not in server_col.events
        peer.close()
