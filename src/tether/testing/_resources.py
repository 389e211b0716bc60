"""A snapshot of what a process holds that a transport could leak: file descriptors,
shared-memory mappings and asyncio tasks; and the difference between two snapshots."""

from __future__ import annotations

import asyncio
import gc
import os
from collections import Counter
from dataclasses import dataclass

_FD_DIR = "/proc/self/fd"
_MAPS = "/proc/self/maps"


def _fd_targets() -> Counter[str] | None:
    """What each open descriptor points at (``socket:[123]``...), or None without /proc."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return None
    targets: Counter[str] = Counter()
    for name in names:
        try:
            target = os.readlink(f"{_FD_DIR}/{name}")
        except OSError:  # closed meanwhile (the listdir descriptor itself)
            continue
        # Sockets and pipes differ by inode each time: count them by kind.
        kind, bracket, _ = target.partition(":[")
        targets[kind if bracket else target] += 1
    return targets


def _shared_mappings() -> Counter[str] | None:
    """Shared-memory segments mapped into the process (``/dev/shm/...``, ``memfd:``)."""
    try:
        with open(_MAPS, encoding="utf-8", errors="replace") as maps:
            lines = maps.readlines()
    except OSError:
        return None
    found: Counter[str] = Counter()
    for line in lines:
        parts = line.split(maxsplit=5)
        path = parts[5].strip() if len(parts) == 6 else ""
        if path.startswith(("/dev/shm/", "/memfd:")):
            found[path.removesuffix(" (deleted)")] += 1
    return found


@dataclass(frozen=True, slots=True)
class ResourceSnapshot:
    """Descriptors (by target), shared-memory mappings and the live tasks, at one moment.

    ``fds`` / ``shm`` are ``None`` where ``/proc`` is unavailable (then not compared).
    """

    fds: Counter[str] | None
    shm: Counter[str] | None
    tasks: frozenset[asyncio.Task[object]]

    @classmethod
    def take(cls) -> ResourceSnapshot:
        """The process's resources now (after a garbage collection, so that objects
        only waiting for the collector do not count)."""
        gc.collect()
        current = asyncio.current_task()
        tasks = frozenset(t for t in asyncio.all_tasks() if t is not current and not t.done())
        return cls(_fd_targets(), _shared_mappings(), tasks)

    def leaks_since(self, before: ResourceSnapshot) -> list[str]:
        """What this snapshot holds beyond ``before``, in words (empty: nothing leaked)."""
        leaks = []
        for what, now, then in (("fds", self.fds, before.fds), ("shm", self.shm, before.shm)):
            if now is None or then is None:
                continue
            extra = now - then
            if extra:
                leaks.append(f"{sum(extra.values())} more {what}: {dict(extra)}")
        new_tasks = self.tasks - before.tasks
        if new_tasks:
            shown = ", ".join(sorted(repr(t.get_coro()) for t in new_tasks)[:5])
            leaks.append(f"{len(new_tasks)} tasks still running: {shown}")
        return leaks
