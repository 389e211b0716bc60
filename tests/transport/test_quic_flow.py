"""FlowControlledQuic without an event loop: two sans-I/O QUIC endpoints wired in memory."""

from __future__ import annotations

from pathlib import Path

from aioquic.quic.events import HandshakeCompleted, StreamDataReceived
from hypothesis import HealthCheck, given, settings, strategies as st

from tether.transport import TLSConfig
from tether.transport._quic import QuicSettings, quic_configuration
from tether.transport._quic_flow import FlowControlledQuic

from .conftest import Certs

WINDOW = 64 * 1024
CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 40001)


class Pair:
    """A client and a server FlowControlledQuic exchanging datagrams on a fake clock."""

    def __init__(self, ca: Path, cert: Path) -> None:
        settings = QuicSettings(window=WINDOW)
        client_config = quic_configuration(
            TLSConfig(ca=ca), settings, is_client=True, host="localhost"
        )
        server_config = quic_configuration(TLSConfig(cert=cert), settings, is_client=False)
        self.now = 1.0
        self.client = FlowControlledQuic(configuration=client_config, peer_bidi_streams=0)
        self.client.connect(SERVER, now=self.now)
        self.server: FlowControlledQuic | None = None
        self.server_config = server_config
        self.received = bytearray()
        self.events: list[object] = []

    def pump(self, rounds: int = 20) -> None:
        """Deliver datagrams both ways until both sides are quiet."""
        for _ in range(rounds):
            self.now += 0.001
            moved = False
            for data, _ in self.client.datagrams_to_send(self.now):
                if self.server is None:
                    self.server = FlowControlledQuic(
                        configuration=self.server_config,
                        peer_bidi_streams=1,
                        original_destination_connection_id=data[6:14],
                    )
                    self.server.track(0)
                self.server.receive_datagram(data, CLIENT, self.now)
                moved = True
            if self.server is not None:
                for data, _ in self.server.datagrams_to_send(self.now):
                    self.client.receive_datagram(data, SERVER, self.now)
                    moved = True
                while (event := self.server.next_event()) is not None:
                    self.events.append(event)
                    if isinstance(event, StreamDataReceived):
                        self.received += event.data
            if not moved:
                return


def test_window_follows_what_the_receiver_consumed(certs: Certs) -> None:
    """The sender gets one window ahead of what the application consumed, and no further."""
    pair = Pair(certs.ca, certs.server)
    pair.pump()
    assert any(isinstance(e, HandshakeCompleted) for e in pair.events)
    pair.client.track(0)
    pair.client.send_stream_data(0, bytes(8 * WINDOW))
    pair.pump(200)
    assert len(pair.received) == WINDOW, "the peer sent past an unconsumed window"
    assert pair.client.unacked(0) == 8 * WINDOW - WINDOW
    assert pair.server is not None
    pair.server.consume(WINDOW)
    pair.pump(200)
    assert len(pair.received) == 2 * WINDOW
    pair.server.consume(6 * WINDOW)  # the application took everything so far and more
    pair.pump(400)
    assert len(pair.received) == 8 * WINDOW
    assert pair.client.unacked(0) == 0


def test_peer_stream_limit_is_respected_by_waiting(certs: Certs) -> None:
    """A second client stream beyond the server's limit of one waits; nothing is sent or lost."""
    pair = Pair(certs.ca, certs.server)
    pair.pump()
    pair.client.send_stream_data(0, b"first")
    second = pair.client.get_next_available_stream_id()
    pair.client.send_stream_data(second, b"second")  # queued: MAX_STREAMS is 1
    pair.pump()
    streams = {e.stream_id for e in pair.events if isinstance(e, StreamDataReceived)}
    assert streams == {0}
    assert bytes(pair.received) == b"first"
    assert pair.client.unacked(second) == len(b"second"), "the blocked stream kept its bytes"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(st.integers(1, 3 * WINDOW), min_size=1, max_size=4),
    consumes=st.lists(st.integers(0, 2 * WINDOW), min_size=1, max_size=6),
)
def test_receiver_never_holds_more_than_a_window_unconsumed(
    certs: Certs, writes: list[int], consumes: list[int]
) -> None:
    """Whatever the writes and reads, the receiver gets at most consumed + window bytes,
    in order, and everything once the application has consumed it all."""
    pair = Pair(certs.ca, certs.server)
    pair.pump()
    pair.client.track(0)
    payload = bytes(i % 251 for i in range(sum(writes)))
    offset = 0
    for size in writes:
        pair.client.send_stream_data(0, payload[offset : offset + size])
        offset += size
    assert pair.server is not None
    consumed = 0
    for amount in consumes:
        pair.pump(300)
        assert len(pair.received) <= consumed + WINDOW
        take = min(amount, len(pair.received) - consumed)
        pair.server.consume(take)
        consumed += take
    pair.server.consume(len(payload) - consumed)  # the application reads everything
    for _ in range(20):
        pair.pump(300)
        if len(pair.received) == len(payload):
            break
    assert bytes(pair.received) == payload
