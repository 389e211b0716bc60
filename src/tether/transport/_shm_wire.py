"""The control channel of ``shm://``: handshake and records on the Unix socket (sans-I/O).

Handshake (each side sends one, the client first; the memfd of the sender's outbound
ring travels with it as SCM_RIGHTS ancillary data)::

    "TSHM" | version u8 | flags u8 (0) | reserved u16 (0) | ring capacity u64     16 bytes

Records after the handshake (big-endian), in both directions::

    0x01                                   DOORBELL  "I published bytes; you were asleep"
    0x02 | consumed u64                    ACK       "I have consumed this many fallback bytes"
    0x03 | mark u64 | length u32 | bytes   DATA      fallback bytes, after ring byte ``mark``
    0x04 | mark u64                        EOF       "no more bytes after ring byte ``mark``"
    0x05 | mark u64                        CLOSE     EOF, and the sender closed the connection
    0x06 | mark u64 | position u64 | length u32 | slack u16
                                           REF       "the next bytes are your own ring's
                                                     [position, position + length)"

``mark`` is the sender's ring ``head`` when it sent the record: the receiver delivers
ring bytes up to ``mark`` first, then the record, which keeps the ring and socket paths
in one order (see ``_shm.py``). A REF sends back, by reference, a region of the
receiver's own outbound ring that the sender has received and still pins (with
``slack`` pinned bytes before it that hold no data any more); the receiver reads it in
place and counts it done in its ring header (``_shm_ring.py``). The socket ending without a CLOSE means the peer
aborted or died. Malformed input raises :class:`~tether.RemoteProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .._exceptions import RemoteProtocolError
from ._shm_ring import MAX_CAPACITY, MIN_CAPACITY

HELLO_MAGIC: Final = b"TSHM"
HELLO_VERSION: Final = 3  # 2: ring padding, 3: references (``_shm_ring.py``)
HELLO_SIZE: Final = 16
_HELLO = struct.Struct(">4sBBHQ")

DOORBELL: Final = b"\x01"
_ACK, _DATA, _EOF, _CLOSE, _REF = 0x02, 0x03, 0x04, 0x05, 0x06
_REF_RECORD = struct.Struct(">BQQIH")
_U64 = struct.Struct(">BQ")
_DATA_HEADER = struct.Struct(">BQI")
#: Largest DATA payload a sender produces and a receiver accepts.
MAX_DATA: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Hello:
    """A handshake: the protocol version and the sender's ring capacity."""

    version: int
    capacity: int


def encode_hello(capacity: int) -> bytes:
    """The 16-byte handshake announcing a ring of ``capacity`` bytes."""
    return _HELLO.pack(HELLO_MAGIC, HELLO_VERSION, 0, 0, capacity)


def decode_hello(data: bytes, *, max_capacity: int = MAX_CAPACITY) -> Hello:
    """Parse and validate a handshake.

    Raises:
        RemoteProtocolError: wrong length or magic (not a tether shm peer), an unknown
            version, nonzero reserved bits, or a capacity that is not a power of two in
            ``[MIN_CAPACITY, max_capacity]``.
    """
    if len(data) != HELLO_SIZE:
        raise RemoteProtocolError(f"shm handshake is {len(data)} bytes, expected {HELLO_SIZE}")
    magic, version, flags, reserved, capacity = _HELLO.unpack(data)
    if magic != HELLO_MAGIC:
        raise RemoteProtocolError(f"not a tether shm peer (handshake starts {magic!r})")
    if version != HELLO_VERSION:
        raise RemoteProtocolError(f"unsupported shm protocol version {version}")
    if flags or reserved:
        raise RemoteProtocolError("shm handshake has unknown flags set")
    if not MIN_CAPACITY <= capacity <= max_capacity or capacity & (capacity - 1):
        raise RemoteProtocolError(
            f"shm ring capacity {capacity} is not a power of two in "
            f"[{MIN_CAPACITY}, {max_capacity}]"
        )
    return Hello(version, capacity)


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doorbell:
    """The peer published ring bytes while we were marked asleep."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The peer has consumed ``consumed`` fallback bytes in total."""

    consumed: int


@dataclass(frozen=True, slots=True)
class Data:
    """Fallback bytes that follow ring byte ``mark``."""

    mark: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Eof:
    """The peer half-closed after ring byte ``mark``."""

    mark: int


@dataclass(frozen=True, slots=True)
class Close:
    """The peer closed after ring byte ``mark`` (an orderly end)."""

    mark: int


@dataclass(frozen=True, slots=True)
class Ref:
    """After ring byte ``mark``: the ``length`` bytes at ``position`` of the receiver's
    own outbound ring (the ``slack`` bytes before them are pinned too, data-free)."""

    mark: int
    position: int
    length: int
    slack: int


Record = Doorbell | Ack | Data | Eof | Close | Ref
#: Records that are ordered with the byte stream (they carry a mark).
Ordered = Data | Eof | Close | Ref
DOORBELL_RECORD: Final = Doorbell()


def encode_ack(consumed: int) -> bytes:
    """An ACK record."""
    return _U64.pack(_ACK, consumed)


def encode_data_header(mark: int, length: int) -> bytes:
    """The header of a DATA record whose ``length`` payload bytes follow."""
    if not 0 < length <= MAX_DATA:
        raise ValueError(f"a DATA record carries 1..{MAX_DATA} bytes, not {length}")
    return _DATA_HEADER.pack(_DATA, mark, length)


def encode_ref(mark: int, position: int, length: int, slack: int) -> bytes:
    """A REF record (``length`` in 1..2**32-1, ``slack`` in 0..65535)."""
    return _REF_RECORD.pack(_REF, mark, position, length, slack)


def encode_eof(mark: int) -> bytes:
    """An EOF record."""
    return _U64.pack(_EOF, mark)


def encode_close(mark: int) -> bytes:
    """A CLOSE record."""
    return _U64.pack(_CLOSE, mark)


class RecordDecoder:
    """Turns the control socket's bytes into records, whatever the chunking.

    Feed bytes with :meth:`feed`; it returns every complete record, in order, and keeps
    a partial one for the next call.

    Raises (from :meth:`feed`):
        RemoteProtocolError: an unknown record type or a DATA length out of range. The
            decoder is then unusable; the connection must close.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def pending(self) -> int:
        """Bytes of an incomplete record held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Record]:
        """Append ``data``; return the complete records."""
        if not self._buf and data.count(1) == len(data):
            return [DOORBELL_RECORD] * len(data)  # the common case: doorbells only
        buf = self._buf
        buf += data
        out: list[Record] = []
        pos = 0
        end = len(buf)
        while pos < end:
            kind = buf[pos]
            if kind == 0x01:
                out.append(DOORBELL_RECORD)
                pos += 1
            elif kind == _DATA:
                if end - pos < _DATA_HEADER.size:
                    break
                _, mark, length = _DATA_HEADER.unpack_from(buf, pos)
                if not 0 < length <= MAX_DATA:
                    raise RemoteProtocolError(f"shm DATA record of {length} bytes (max {MAX_DATA})")
                start = pos + _DATA_HEADER.size
                if end - start < length:
                    break
                out.append(Data(mark, bytes(buf[start : start + length])))
                pos = start + length
            elif kind == _REF:
                if end - pos < _REF_RECORD.size:
                    break
                _, mark, position, length, slack = _REF_RECORD.unpack_from(buf, pos)
                if not length:
                    raise RemoteProtocolError("shm REF record of 0 bytes")
                pos += _REF_RECORD.size
                out.append(Ref(mark, position, length, slack))
            elif kind in (_ACK, _EOF, _CLOSE):
                if end - pos < _U64.size:
                    break
                _, value = _U64.unpack_from(buf, pos)
                pos += _U64.size
                out.append(
                    Ack(value) if kind == _ACK else Eof(value) if kind == _EOF else Close(value)
                )
            else:
                raise RemoteProtocolError(f"unknown shm control record type 0x{kind:02x}")
        del buf[:pos]
        return out
