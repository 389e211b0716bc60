"""A raw UDP peer that speaks (or abuses) the kcp:// packet format, for bad-input tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from kcp.extension import KCP

from tether.transport import parse_address
from tether.transport._kcp_wire import (
    Packet,
    PacketType,
    decode_packet,
    encode_control,
    encode_header,
    encode_hello,
    welcome_token,
)


class RawPeer(asyncio.DatagramProtocol):
    """A connected UDP socket that records every datagram it receives."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def packet(self, timeout: float = 5.0) -> Packet:
        """The next datagram, decoded."""
        async with asyncio.timeout(timeout):
            return decode_packet(await self.received.get())

    async def packet_of(self, type_: PacketType, timeout: float = 5.0) -> Packet:
        """The next datagram of ``type_`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                packet = await self.packet()
                if packet.type is type_:
                    return packet

    async def handshake(self, nonce: int = 12345, *, ready: bool = True) -> tuple[int, int]:
        """HELLO (and READY): the (conv, token) the listener assigned."""
        self.send(encode_hello(nonce))
        welcome = await self.packet_of(PacketType.WELCOME)
        assert welcome.token == nonce
        conv, token = welcome.conv, welcome_token(welcome)
        if ready:
            self.send(encode_control(PacketType.READY, conv, token))
            await self.packet_of(PacketType.PONG)
        return conv, token

    def kcp(self, conv: int, token: int) -> KCP:
        """A KCP endpoint for ``conv`` whose output goes out as DATA packets."""
        header = encode_header(PacketType.DATA, conv, token)
        kcp = KCP(conv, no_delay=True, update_interval=10, send_window_size=128)
        kcp.include_outbound_handler(lambda _k, segment: self.send(header + segment))
        kcp.update()
        return kcp

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def raw_peer(address: str) -> RawPeer:
    """A RawPeer connected to the host and port of ``address``."""
    parsed = parse_address(address)
    assert parsed.port is not None
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(RawPeer, remote_addr=(parsed.host, parsed.port))
    return peer


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (for state that has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
