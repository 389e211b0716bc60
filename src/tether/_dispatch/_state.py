"""State machines of the dispatcher, as enums with explicit transition tables (h11's rule:
everything that decides a transition lives in this one file)."""

from __future__ import annotations

import enum

from .._exceptions import LocalProtocolError


class ConnectionState(enum.Enum):
    """Where a dispatched connection is in its life (muxio's transport states)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DRAINING = "draining"  # GOAWAY sent or received: no new streams, old ones finish
    DISCONNECTED = "disconnected"


class ConnectionInput(enum.Enum):
    """What moves a connection between states."""

    ACTIVE = "active"
    GOAWAY = "goaway"
    LOST = "lost"


_CONNECTION_TRANSITIONS: dict[tuple[ConnectionState, ConnectionInput], ConnectionState] = {
    (ConnectionState.CONNECTING, ConnectionInput.ACTIVE): ConnectionState.CONNECTED,
    (ConnectionState.CONNECTING, ConnectionInput.LOST): ConnectionState.DISCONNECTED,
    (ConnectionState.CONNECTED, ConnectionInput.GOAWAY): ConnectionState.DRAINING,
    (ConnectionState.CONNECTED, ConnectionInput.LOST): ConnectionState.DISCONNECTED,
    (ConnectionState.DRAINING, ConnectionInput.GOAWAY): ConnectionState.DRAINING,
    (ConnectionState.DRAINING, ConnectionInput.LOST): ConnectionState.DISCONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionInput.LOST): ConnectionState.DISCONNECTED,
    (ConnectionState.DISCONNECTED, ConnectionInput.GOAWAY): ConnectionState.DISCONNECTED,
}


def next_connection_state(state: ConnectionState, event: ConnectionInput) -> ConnectionState:
    """The state after ``event``.

    Raises:
        LocalProtocolError: the pair is not in the table.
    """
    try:
        return _CONNECTION_TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"connection: {event.value} in state {state.value}") from None


class StreamState(enum.Enum):
    """One call's stream, from this side's point of view."""

    # Members are singletons compared by identity, so hash them by identity too: Enum's
    # default __hash__ is a Python-level function, and the transition table is looked up
    # several times per call.
    __hash__ = object.__hash__

    OPEN = "open"
    HALF_CLOSED_LOCAL = "half_closed_local"  # we sent our end; we may still receive
    HALF_CLOSED_REMOTE = "half_closed_remote"  # the peer ended; we may still send
    CLOSED = "closed"


class StreamInput(enum.Enum):
    """What moves a stream between states."""

    __hash__ = object.__hash__  # see StreamState

    SEND_END = "send_end"  # we half-close (client: end of requests; server: trailers)
    RECV_END = "recv_end"  # the peer half-closes (client: trailers; server: end of requests)
    FINISH = "finish"  # the call is over: trailers, reset, deadline or connection loss


_O, _HL, _HR, _C = (
    StreamState.OPEN,
    StreamState.HALF_CLOSED_LOCAL,
    StreamState.HALF_CLOSED_REMOTE,
    StreamState.CLOSED,
)

_STREAM_TRANSITIONS: dict[tuple[StreamState, StreamInput], StreamState] = {
    (_O, StreamInput.SEND_END): _HL,
    (_O, StreamInput.RECV_END): _HR,
    (_HL, StreamInput.RECV_END): _C,
    (_HR, StreamInput.SEND_END): _C,
    (_O, StreamInput.FINISH): _C,
    (_HL, StreamInput.FINISH): _C,
    (_HR, StreamInput.FINISH): _C,
    (_C, StreamInput.FINISH): _C,
    (_C, StreamInput.RECV_END): _C,  # late end after a reset: ignored
}


def next_stream_state(state: StreamState, event: StreamInput) -> StreamState:
    """The state after ``event``.

    Raises:
        LocalProtocolError: the pair is not in the table (e.g. sending after our end).
    """
    try:
        return _STREAM_TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"stream: {event.value} in state {state.value}") from None
