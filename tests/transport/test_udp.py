"""UDP sockets for kcp:// and quic://: failed binds and cancelled handovers leave nothing open."""

from __future__ import annotations

import asyncio
import os

import pytest

from tether.transport._udp import UDPEndpoint, adopt, udp_socket

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_binding_an_address_in_use_fails_and_leaves_no_socket() -> None:
    """A second bind to a bound port raises OSError and closes the socket it made."""
    first = await udp_socket("127.0.0.1", 0, connect=False)
    try:
        port = first.getsockname()[1]
        before = open_fds()
        with pytest.raises(OSError):
            await udp_socket("127.0.0.1", port, connect=False)
        assert open_fds() == before
    finally:
        first.close()


async def test_adopt_hands_the_socket_to_the_endpoint() -> None:
    """adopt() returns the endpoint, connected to a transport over our socket."""
    sock = await udp_socket("127.0.0.1", 0, connect=False, buffer_size=1 << 20)
    endpoint = await adopt(sock, UDPEndpoint)
    assert endpoint.transport is not None
    assert endpoint.transport.get_extra_info("sockname") == sock.getsockname()
    endpoint.abandon()
    endpoint.abandon()  # idempotent


@pytest.mark.parametrize("steps", range(5))
async def test_cancelled_adoption_leaves_no_socket(steps: int) -> None:
    """Cancelling adopt() at any step closes the socket, even once the loop made a
    transport around it (uvloop leaves that one open)."""
    await asyncio.sleep(0)  # the loop's own lazy descriptors come first
    before = open_fds()

    async def open_endpoint() -> UDPEndpoint:
        sock = await udp_socket("127.0.0.1", 0, connect=False)
        return await adopt(sock, UDPEndpoint)

    task = asyncio.create_task(open_endpoint())
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    try:
        endpoint = await task
    except asyncio.CancelledError:
        pass
    else:
        endpoint.abandon()  # it finished first
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert open_fds() == before
