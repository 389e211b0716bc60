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

The codec's hot path does not touch the enums: a stream record keeps its side and state
as plain ints (the members' values, named below as ``INITIATOR``, ``ST_OPEN``,
``RECV_DATA`` ...) and looks transitions up with :func:`step` in :data:`STEP`, the same
table flattened into a tuple of ints. In the compiled build an int compares, indexes and
is stored natively, where an Enum member is a Python object every time.
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


# -- the same data as plain ints, for the hot path ------------------------------------
# (tests/framing/test_native_streams.py pins each constant to its enum member)

INITIATOR: Final = 0
ACCEPTOR: Final = 1
ST_IDLE: Final = 0
ST_OPEN: Final = 1
ST_HALF_CLOSED_LOCAL: Final = 2
ST_HALF_CLOSED_REMOTE: Final = 3
ST_CLOSED: Final = 4
SEND_OPEN: Final = 0
SEND_OPEN_END: Final = 1
SEND_HEADERS: Final = 2
SEND_DATA: Final = 3
SEND_DATA_END: Final = 4
SEND_END: Final = 5
SEND_CANCEL: Final = 6
RECV_OPEN: Final = 7
RECV_OPEN_END: Final = 8
RECV_HEADERS: Final = 9
RECV_DATA: Final = 10
RECV_DATA_END: Final = 11
RECV_END: Final = 12
RECV_CANCEL: Final = 13
RECV_WINDOW_UPDATE: Final = 14
#: What :func:`step` returns for an input the table forbids.
FORBIDDEN: Final = -1

_STATE_COUNT: Final = len(StreamState)
_INPUT_COUNT: Final = len(StreamInput)


#: :data:`TRANSITIONS` flattened: entry ``(side * 5 + state) * 15 + input`` is the next
#: state's value, or :data:`FORBIDDEN`.
def _flat() -> tuple[int, ...]:
    entries = []
    for side in StreamSide:
        for state in StreamState:
            for input_ in StreamInput:
                new = TRANSITIONS.get((side, state, input_))
                entries.append(FORBIDDEN if new is None else int(new))
    return tuple(entries)


STEP: Final = _flat()


def step(side: int, state: int, input_: int) -> int:
    """The state after ``input_`` (values of the enums), or :data:`FORBIDDEN`."""
    return STEP[(side * _STATE_COUNT + state) * _INPUT_COUNT + input_]


def peer_may_send(state: int) -> bool:
    """May the peer still send DATA in ``state`` (so returning credit is useful)?"""
    return state in (ST_OPEN, ST_HALF_CLOSED_LOCAL)


def frame_of(input_: int) -> str:
    """The frame type an input is about (``RECV_DATA_END`` → ``DATA``)."""
    frame = StreamInput(input_).name.partition("_")[2]
    return frame if frame == "END" else frame.removesuffix("_END")


def describe(side: int, state: int, input_: int) -> str:
    """A human-readable reason why ``input_`` is not allowed (for error messages); the
    arguments are the enums or their values."""
    name = StreamInput(input_).name
    verb = "sending" if name.startswith("SEND") else "receiving"
    frame = frame_of(input_)
    if name.endswith("_END") and frame != "END":
        frame += " with END_STREAM"
    part = "we opened" if side == INITIATOR else "the peer opened"
    return f"{verb} {frame} is not allowed on a stream {part} in state {StreamState(state).name}"
