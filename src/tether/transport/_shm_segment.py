"""Shared segments for ``shm://``: anonymous, sealed memfds mapped into both processes.

A segment is created by the producer of a ring (``memfd_create``, ``ftruncate``, then
sealed against shrinking and growing), mapped, initialised, and its fd is passed to the
peer with SCM_RIGHTS. Both sides close their fd right after mapping: the mapping keeps
the memory alive, and the kernel frees it when the last mapping goes, so a crashed
process leaks nothing and no name ever appears in ``/dev/shm``.

The seals matter for safety: a peer that could shrink the file after we mapped it would
make our next access fault with SIGBUS and kill the process; :func:`map_peer_segment`
refuses a segment without ``F_SEAL_SHRINK``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import sys

if sys.platform != "win32":
    import fcntl

from .._exceptions import RemoteProtocolError
from ._shm_ring import init_ring, segment_size

#: The name memfds get (visible in /proc/<pid>/maps as ``/memfd:tether-shm (deleted)``).
MEMFD_NAME = "tether-shm"
#: Whether this platform has sealed memfds (Linux); importing this module never fails.
SUPPORTED = sys.platform.startswith("linux") and hasattr(os, "memfd_create")
if SUPPORTED:
    _SEAL_SHRINK = fcntl.F_SEAL_SHRINK
    _SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


class Segment:
    """A mapped shared segment; :meth:`close` unmaps it once every view is released."""

    __slots__ = ("_map", "view")

    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping
        self.view = memoryview(mapping)

    @property
    def mapping(self) -> mmap.mmap:
        """The mapping itself (for views that must keep it mapped while they live)."""
        return self._map

    def close(self) -> None:
        """Release our view and unmap (idempotent; the ring objects must be closed first).

        While another view of the mapping is still exported (a lent region, see
        ``_shm_loans.py``) the unmapping waits: call again once it is gone.
        """
        self.view.release()
        with contextlib.suppress(BufferError):  # a view is still exported: GC unmaps later
            self._map.close()


def create_segment(capacity: int) -> tuple[Segment, int]:
    """A fresh sealed memfd holding an initialised ring of ``capacity`` bytes.

    Returns the mapped segment and the fd to pass to the peer; the caller closes the fd
    once it is sent.

    Raises:
        OSError: the kernel refused (no memfd support, out of memory).
    """
    size = segment_size(capacity)
    fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        segment = Segment(mmap.mmap(fd, size))
    except BaseException:
        os.close(fd)
        raise
    init_ring(segment.view, capacity)
    return segment, fd


def map_peer_segment(fd: int, capacity: int) -> Segment:
    """Map the segment a peer sent for a ring of ``capacity`` bytes. Does not close ``fd``.

    Raises:
        RemoteProtocolError: not a regular file, the wrong size, or not sealed against
            shrinking (which would let the peer crash us with SIGBUS).
        OSError: mapping failed.
    """
    st = os.fstat(fd)
    size = segment_size(capacity)
    if not stat.S_ISREG(st.st_mode):
        raise RemoteProtocolError("the peer's shm descriptor is not a memory file")
    if st.st_size != size:
        raise RemoteProtocolError(
            f"the peer's shm segment has {st.st_size} bytes; its handshake implies {size}"
        )
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:  # not a memfd (EINVAL)
        raise RemoteProtocolError("the peer's shm descriptor is not a sealed memfd") from exc
    if not seals & _SEAL_SHRINK:
        raise RemoteProtocolError("the peer's shm segment is not sealed against shrinking")
    return Segment(mmap.mmap(fd, size))
