"""The kcp:// session state machine, without an event loop."""

from __future__ import annotations

from tether.transport._kcp_state import TRANSITIONS, SessionEvent, SessionState, next_state


def test_orderly_close_path() -> None:
    """HANDSHAKE -> OPEN -> CLOSING -> CLOSE_SENT -> CLOSED on the closing side."""
    state = SessionState.HANDSHAKE
    for event, expected in [
        (SessionEvent.ESTABLISHED, SessionState.OPEN),
        (SessionEvent.CLOSE_CALLED, SessionState.CLOSING),
        (SessionEvent.FLUSHED, SessionState.CLOSE_SENT),
        (SessionEvent.CLOSE_ACKED, SessionState.CLOSED),
    ]:
        state = next_state(state, event)
        assert state is expected


def test_passive_close_path() -> None:
    """The side that receives CLOSE waits in PEER_CLOSED until the application closes."""
    state = next_state(SessionState.OPEN, SessionEvent.PEER_CLOSED)
    assert state is SessionState.PEER_CLOSED
    assert next_state(state, SessionEvent.CLOSE_CALLED) is SessionState.CLOSED


def test_every_live_state_can_be_lost() -> None:
    """LOST ends every state but CLOSED, which absorbs every event."""
    for state in SessionState:
        if state is SessionState.CLOSED:
            assert all(next_state(state, event) is state for event in SessionEvent)
        else:
            assert next_state(state, SessionEvent.LOST) is SessionState.CLOSED


def test_unlisted_pairs_are_no_ops() -> None:
    """An event that does not apply leaves the state alone (e.g. FLUSHED while OPEN)."""
    assert next_state(SessionState.OPEN, SessionEvent.FLUSHED) is SessionState.OPEN
    assert (SessionState.OPEN, SessionEvent.FLUSHED) not in TRANSITIONS
