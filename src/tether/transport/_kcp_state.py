"""The life of one ``kcp://`` session: states, events and the transition table (pure).

::

    HANDSHAKE --established--> OPEN --close_called--> CLOSING --flushed--> CLOSE_SENT
        |                       |  \\                    |                    |
        |                       |   peer_closed -> PEER_CLOSED --close_called-+--> CLOSED
        +--- lost ------------> +-------- lost (reset, idle, abort, ...) ---------> CLOSED

* ``HANDSHAKE``: client: HELLO sent, no WELCOME yet; server: WELCOME sent, no READY yet
  (the server hands the session to ``on_connection`` on the transition to ``OPEN``).
* ``OPEN``: KCP carries the byte stream both ways (a FIN inside it half-closes one way).
* ``CLOSING``: we called ``close()``: our FIN is queued; waiting for KCP to have every
  byte we sent acknowledged.
* ``CLOSE_SENT``: everything was acknowledged; CLOSE sent, waiting for CLOSE_ACK (resent
  a few times, then given up: our data is known to be delivered either way).
* ``PEER_CLOSED``: the peer sent CLOSE after all our data was acknowledged; nothing more
  will be read from us (TCP's CLOSE_WAIT): a write now breaks the connection.
* ``CLOSED``: gone; ``on_inactive`` was (or is being) delivered.
"""

from __future__ import annotations

import enum


class SessionState(enum.Enum):
    """Where a session is in its life."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"
    CLOSE_SENT = "close-sent"
    PEER_CLOSED = "peer-closed"
    CLOSED = "closed"


class SessionEvent(enum.Enum):
    """What moves a session between states."""

    ESTABLISHED = "established"  # WELCOME (client) / READY or first packet (server)
    CLOSE_CALLED = "close-called"  # the application called close()
    FLUSHED = "flushed"  # every byte we sent (FIN included) is acknowledged
    CLOSE_ACKED = "close-acked"  # CLOSE_ACK (or CLOSE) arrived, or we gave up waiting
    PEER_CLOSED = "peer-closed"  # a CLOSE arrived
    LOST = "lost"  # abort, RESET, idle timeout, handshake timeout, socket error


S, E = SessionState, SessionEvent

#: (state, event) -> next state. A pair not listed is a no-op (the event is ignored).
TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (S.HANDSHAKE, E.ESTABLISHED): S.OPEN,
    (S.HANDSHAKE, E.LOST): S.CLOSED,
    (S.HANDSHAKE, E.CLOSE_CALLED): S.CLOSED,
    (S.OPEN, E.CLOSE_CALLED): S.CLOSING,
    (S.OPEN, E.PEER_CLOSED): S.PEER_CLOSED,
    (S.OPEN, E.LOST): S.CLOSED,
    (S.CLOSING, E.FLUSHED): S.CLOSE_SENT,
    (S.CLOSING, E.PEER_CLOSED): S.CLOSED,
    (S.CLOSING, E.LOST): S.CLOSED,
    (S.CLOSE_SENT, E.CLOSE_ACKED): S.CLOSED,
    (S.CLOSE_SENT, E.PEER_CLOSED): S.CLOSED,
    (S.CLOSE_SENT, E.LOST): S.CLOSED,
    (S.PEER_CLOSED, E.CLOSE_CALLED): S.CLOSED,
    (S.PEER_CLOSED, E.LOST): S.CLOSED,
}

del S, E


def next_state(state: SessionState, event: SessionEvent) -> SessionState:
    """The state after ``event`` in ``state`` (``state`` itself if the pair is not listed)."""
    return TRANSITIONS.get((state, event), state)
