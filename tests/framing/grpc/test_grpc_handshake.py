"""The SETTINGS handshake as the gRPC codec reports it: HandshakeCompleted, once, when
the peer acknowledges our SETTINGS (the driver then disarms its deadline)."""

from __future__ import annotations

import h2.config
import h2.connection
import pytest

from tether import ErrorCode, RemoteProtocolError
from tether.framing import HandshakeCompleted, Role, SettingsChanged
from tether.framing.grpc import GrpcCodec, GrpcOptions

from .h2_peer import Session, h2_connection

SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def test_client_reports_the_ack_of_its_settings_once() -> None:
    """A client codec against h2 reports HandshakeCompleted exactly once, after the
    server's SETTINGS, and a later SETTINGS ACK reports nothing more."""
    session = Session(GrpcCodec(Role.CLIENT), h2_connection(client=False))
    session.pump()
    kinds = [type(e) for e in session.our_events]
    assert kinds.count(HandshakeCompleted) == 1
    assert kinds.index(SettingsChanged) < kinds.index(HandshakeCompleted)
    assert session.ours.receive_data(SETTINGS_ACK) == []
    session.ours.check_handshake()  # acknowledged: the deadline passing changes nothing
    assert session.ours.data_to_send() == b""


def test_server_reports_the_ack_of_its_settings_once() -> None:
    """A server codec reports HandshakeCompleted when the h2 client acknowledges its
    SETTINGS, not before."""
    ours = GrpcCodec(Role.SERVER)
    theirs = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    theirs.initiate_connection()
    first = ours.receive_data(theirs.data_to_send())  # preface + SETTINGS, no ACK yet
    assert not [e for e in first if isinstance(e, HandshakeCompleted)]
    theirs.receive_data(ours.data_to_send())  # h2 acknowledges our SETTINGS
    assert ours.receive_data(theirs.data_to_send()) == [HandshakeCompleted()]


def test_no_handshake_event_without_an_ack() -> None:
    """Until the ACK arrives the codec reports no HandshakeCompleted, and once the
    deadline passes check_handshake fails the connection (SETTINGS_TIMEOUT)."""
    ours = GrpcCodec(Role.CLIENT, options=GrpcOptions(settings_timeout=1.0))
    server_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    assert not [e for e in ours.receive_data(server_settings) if isinstance(e, HandshakeCompleted)]
    with pytest.raises(RemoteProtocolError) as info:
        ours.check_handshake()
    assert info.value.error_code == ErrorCode.SETTINGS_TIMEOUT
