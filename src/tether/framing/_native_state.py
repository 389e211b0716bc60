"""The native protocol's per-stream state machine, as data (h11's ``_state.py`` habit).

Rule: everything that decides whether a frame may be sent or received on a stream lives
in :data:`TRANSITIONS`. A ``(side, state, input)`` triple missing from the table is a
protocol violation: the codec raises :class:`~tether.LocalProtocolError` for a ``SEND_*``
input and :class:`~tether.RemoteProtocolError` for a ``RECV_*`` input.

A stream's *side* is our part in it: the :attr:`StreamSide.INITIATOR` sent the OPEN and
may send DATA and half-close with END_STREAM; the :attr:`StreamSide.ACCEPTOR` may send
HEADERS and DATA and ends the whole call with END. Either may CANCEL. The table does not
know which connection role (client or server) we play: both may open streams.

Entries that lead from CLOSED to CLOSED on a ``RECV_*`` input are the frames a peer may
legitimately send on a stream it has not yet learnt is closed (a race with a CANCEL or an
END): the codec accepts and ignores them. ``(CLOSED, SEND_CANCEL)`` is a no-op, because
resetting a call that has just finished is a race, not a bug.

The enums are ``IntEnum`` only so that hashing a table key stays in C on the hot path.
"""

from __future__ import annotations

import enum
from typing import Final


class StreamState(enum.IntEnum):
    """Where a stream is in its life, seen from this end (HTTP/2's names)."""

    IDLE = 0
    OPEN = 1
    #: We half-closed (sent END_STREAM); the peer may still send.
    HALF_CLOSED_LOCAL = 2
    #: The peer half-closed; we may still send.
    HALF_CLOSED_REMOTE = 3
    CLOSED = 4


class StreamSide(enum.IntEnum):
    """Our part in a stream."""

    #: We sent the OPEN.
    INITIATOR = 0
    #: The peer sent the OPEN.
    ACCEPTOR = 1


class StreamInput(enum.IntEnum):
    """Something sent or received on a stream. ``*_END`` inputs carry END_STREAM."""

    SEND_OPEN = 0
    SEND_OPEN_END = 1
    SEND_HEADERS = 2
    SEND_DATA = 3
    SEND_DATA_END = 4
    SEND_END = 5
    SEND_CANCEL = 6
    RECV_OPEN = 7
    RECV_OPEN_END = 8
    RECV_HEADERS = 9
    RECV_DATA = 10
    RECV_DATA_END = 11
    RECV_END = 12
    RECV_CANCEL = 13
    RECV_WINDOW_UPDATE = 14


_I = StreamSide.INITIATOR
_A = StreamSide.ACCEPTOR
IDLE = StreamState.IDLE
OPEN = StreamState.OPEN
HALF_CLOSED_LOCAL = StreamState.HALF_CLOSED_LOCAL
HALF_CLOSED_REMOTE = StreamState.HALF_CLOSED_REMOTE
CLOSED = StreamState.CLOSED
_In = StreamInput

#: ``(side, state, input) -> next state``. Anything missing is a protocol violation.
TRANSITIONS: Final[dict[tuple[StreamSide, StreamState, StreamInput], StreamState]] = {
    # -- we opened the stream ----------------------------------------------------
    (_I, IDLE, _In.SEND_OPEN): OPEN,
    (_I, IDLE, _In.SEND_OPEN_END): HALF_CLOSED_LOCAL,
    (_I, OPEN, _In.SEND_DATA): OPEN,
    (_I, OPEN, _In.SEND_DATA_END): HALF_CLOSED_LOCAL,
    (_I, OPEN, _In.SEND_CANCEL): CLOSED,
    (_I, OPEN, _In.RECV_HEADERS): OPEN,
    (_I, OPEN, _In.RECV_DATA): OPEN,
    (_I, OPEN, _In.RECV_END): CLOSED,
    (_I, OPEN, _In.RECV_CANCEL): CLOSED,
    (_I, OPEN, _In.RECV_WINDOW_UPDATE): OPEN,
    (_I, HALF_CLOSED_LOCAL, _In.SEND_CANCEL): CLOSED,
    (_I, HALF_CLOSED_LOCAL, _In.RECV_HEADERS): HALF_CLOSED_LOCAL,
    (_I, HALF_CLOSED_LOCAL, _In.RECV_DATA): HALF_CLOSED_LOCAL,
    (_I, HALF_CLOSED_LOCAL, _In.RECV_END): CLOSED,
    (_I, HALF_CLOSED_LOCAL, _In.RECV_CANCEL): CLOSED,
    (_I, HALF_CLOSED_LOCAL, _In.RECV_WINDOW_UPDATE): HALF_CLOSED_LOCAL,
    (_I, CLOSED, _In.SEND_CANCEL): CLOSED,
    (_I, CLOSED, _In.RECV_HEADERS): CLOSED,
    (_I, CLOSED, _In.RECV_DATA): CLOSED,
    (_I, CLOSED, _In.RECV_DATA_END): CLOSED,
    (_I, CLOSED, _In.RECV_END): CLOSED,
    (_I, CLOSED, _In.RECV_CANCEL): CLOSED,
    (_I, CLOSED, _In.RECV_WINDOW_UPDATE): CLOSED,
    # -- the peer opened the stream ----------------------------------------------
    (_A, IDLE, _In.RECV_OPEN): OPEN,
    (_A, IDLE, _In.RECV_OPEN_END): HALF_CLOSED_REMOTE,
    (_A, OPEN, _In.SEND_HEADERS): OPEN,
    (_A, OPEN, _In.SEND_DATA): OPEN,
    (_A, OPEN, _In.SEND_END): CLOSED,
    (_A, OPEN, _In.SEND_CANCEL): CLOSED,
    (_A, OPEN, _In.RECV_DATA): OPEN,
    (_A, OPEN, _In.RECV_DATA_END): HALF_CLOSED_REMOTE,
    (_A, OPEN, _In.RECV_CANCEL): CLOSED,
    (_A, OPEN, _In.RECV_WINDOW_UPDATE): OPEN,
    (_A, HALF_CLOSED_REMOTE, _In.SEND_HEADERS): HALF_CLOSED_REMOTE,
    (_A, HALF_CLOSED_REMOTE, _In.SEND_DATA): HALF_CLOSED_REMOTE,
    (_A, HALF_CLOSED_REMOTE, _In.SEND_END): CLOSED,
    (_A, HALF_CLOSED_REMOTE, _In.SEND_CANCEL): CLOSED,
    (_A, HALF_CLOSED_REMOTE, _In.RECV_CANCEL): CLOSED,
    (_A, HALF_CLOSED_REMOTE, _In.RECV_WINDOW_UPDATE): HALF_CLOSED_REMOTE,
    (_A, CLOSED, _In.SEND_CANCEL): CLOSED,
    (_A, CLOSED, _In.RECV_DATA): CLOSED,
    (_A, CLOSED, _In.RECV_DATA_END): CLOSED,
    (_A, CLOSED, _In.RECV_CANCEL): CLOSED,
    (_A, CLOSED, _In.RECV_WINDOW_UPDATE): CLOSED,
}

#: States in which the peer may still send DATA (so returning credit is useful).
PEER_MAY_SEND: Final = frozenset({OPEN, HALF_CLOSED_LOCAL})

Row = tuple["StreamState | None", ...]


def _dense() -> tuple[tuple[Row, ...], ...]:
    return tuple(
        tuple(
            tuple(TRANSITIONS.get((side, state, input_)) for input_ in StreamInput)
            for state in StreamState
        )
        for side in StreamSide
    )


#: :data:`TRANSITIONS` again as nested tuples indexed ``[side][state][input]``, with
#: ``None`` for forbidden inputs: the same data, laid out for the hot path (indexing a
#: tuple with an ``IntEnum`` is cheaper than building and hashing a key).
NEXT_STATE: Final = _dense()


def next_state(side: StreamSide, state: StreamState, input_: StreamInput) -> StreamState | None:
    """The state after ``input_``, or ``None`` when the table forbids it."""
    return TRANSITIONS.get((side, state, input_))


def frame_of(input_: StreamInput) -> str:
    """The frame type an input is about (``RECV_DATA_END`` → ``DATA``)."""
    frame = input_.name.partition("_")[2]
    return frame if frame == "END" else frame.removesuffix("_END")


def describe(side: StreamSide, state: StreamState, input_: StreamInput) -> str:
    """A human-readable reason why ``input_`` is not allowed (for error messages)."""
    verb = "sending" if input_.name.startswith("SEND") else "receiving"
    frame = frame_of(input_)
    if input_.name.endswith("_END") and frame != "END":
        frame += " with END_STREAM"
    part = "we opened" if side is StreamSide.INITIATOR else "the peer opened"
    return f"{verb} {frame} is not allowed on a stream {part} in state {state.name}"
