"""Connection liveness for every transport and protocol: heartbeat and idle close.

One :class:`Keepalive` per dispatched connection, driven by one event-loop timer handle
(no task, no busy loop). The dispatcher only records *when* things happened (a read, a
stream finishing); the timer is re-armed lazily, when it fires, from those timestamps,
so the per-read cost is one attribute store.

* **Heartbeat** (the public :class:`~tether.KeepaliveConfig`: ``interval``, ``timeout``,
  ``without_calls``): when nothing has been read for ``interval``, send a PING (any codec
  that supports :class:`~tether.framing.Ping`); on a connection with no call in flight
  only if ``without_calls`` (gRPC servers count such PINGs as abuse by default). If
  nothing at all (the ACK or any other byte) arrives within ``timeout``, the peer is
  declared dead: every pending call fails at once with UNAVAILABLE ("keepalive failed")
  and the connection is aborted.
  This catches half-open peers (a crashed host, a silent middlebox, a stopped process)
  that TCP alone would notice only after minutes. A codec that refuses PING gets no
  heartbeat (logged once at debug level).
* **Idle close** (``idle_timeout``): a connection with no open stream for that long is
  closed gracefully: a server sends GOAWAY then half-closes; a client stops using it
  (DRAINING) and half-closes, and its next call opens a new connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._config import KeepaliveConfig
from .._exceptions import ConfigError, LocalProtocolError, StatusError
from ..framing import Ping

if TYPE_CHECKING:
    from ._base import DispatcherBase

logger = logging.getLogger("tether.dispatch")


@dataclass(frozen=True, slots=True, kw_only=True)
class LivenessConfig:
    """Liveness settings of a connection (``None`` turns a feature off).

    Attributes:
        heartbeat_interval: seconds without reading anything before a PING is sent.
        heartbeat_timeout: seconds a PING may go unanswered (nothing read at all)
            before the connection is declared dead.
        heartbeat_without_calls: also PING while no stream is open.
        idle_timeout: seconds with no open stream before the connection is closed.
    """

    heartbeat_interval: float | None = None
    heartbeat_timeout: float = 20.0
    heartbeat_without_calls: bool = True
    idle_timeout: float | None = None

    @classmethod
    def of(cls, keepalive: KeepaliveConfig | None, idle_timeout: float | None) -> LivenessConfig:
        """The settings for a Client's or Server's ``keepalive`` and ``idle_timeout``."""
        if keepalive is None:
            return cls(idle_timeout=idle_timeout)
        return cls(
            heartbeat_interval=keepalive.interval,
            heartbeat_timeout=keepalive.timeout,
            heartbeat_without_calls=keepalive.without_calls,
            idle_timeout=idle_timeout,
        )

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive (or None: off)")
        if self.heartbeat_timeout <= 0:
            raise ConfigError("heartbeat_timeout must be positive")

    @property
    def enabled(self) -> bool:
        """Whether anything is to be watched."""
        return self.heartbeat_interval is not None or self.idle_timeout is not None


class Keepalive:
    """Watches one dispatcher's connection; see the module docstring.

    The dispatcher sets :attr:`last_read` on every read and :attr:`last_busy` when its
    last stream finishes, calls :meth:`start` once the connection is active and
    :meth:`stop` once it is gone. Everything runs on the dispatcher's loop.
    """

    __slots__ = (
        "_config",
        "_dispatcher",
        "_loop",
        "_ping_sent",
        "_timer",
        "last_busy",
        "last_read",
    )

    def __init__(self, dispatcher: DispatcherBase, config: LivenessConfig) -> None:
        self._dispatcher = dispatcher
        self._config = config
        self._loop = dispatcher.loop
        now = self._loop.time()
        self.last_read = now
        self.last_busy = now
        self._ping_sent: float | None = None  # when the unanswered PING left, if any
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin watching (the connection just became active)."""
        now = self._loop.time()
        self.last_read = self.last_busy = now
        self._arm(now)

    def stop(self) -> None:
        """Stop watching (the connection is gone). Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the timer -------------------------------------------------------------------------

    def _arm(self, now: float) -> None:
        due = self._next_due(now)
        if due is not None:
            self._timer = self._loop.call_at(due, self._fire)

    def _next_due(self, now: float) -> float | None:
        config = self._config
        dues: list[float] = []
        if config.heartbeat_interval is not None:
            sent = self._ping_sent
            if sent is not None:
                # Look once after ``interval`` (an answered PING lets the next one leave
                # on time), then at the deadline.
                check, deadline = sent + config.heartbeat_interval, sent + config.heartbeat_timeout
                dues.append(check if now < check < deadline else deadline)
            else:
                due = self.last_read + config.heartbeat_interval
                if not config.heartbeat_without_calls and not self._dispatcher.streams:
                    due = max(due, now + config.heartbeat_interval)  # look again later
                dues.append(due)
        if config.idle_timeout is not None:
            if self._dispatcher.streams:
                dues.append(now + config.idle_timeout)  # not idle: look again later
            else:
                dues.append(self.last_busy + config.idle_timeout)
        return max(min(dues), now) if dues else None

    def _fire(self) -> None:
        self._timer = None
        dispatcher = self._dispatcher
        if dispatcher.connection is None or dispatcher.connection.is_closing():
            return
        now = self._loop.time()
        if self._check_heartbeat(now) and self._check_idle(now):
            self._arm(now)

    def _check_heartbeat(self, now: float) -> bool:
        """Send a PING or judge the last one; False once the connection was aborted."""
        config = self._config
        interval = config.heartbeat_interval
        if interval is None:
            return True
        sent = self._ping_sent
        if sent is not None:
            # >=: uvloop's clock ticks in milliseconds, and an ACK can come back on the
            # same tick. A read on that tick *before* the PING is impossible: the PING
            # only leaves after ``interval`` without reads.
            if self.last_read >= sent:
                self._ping_sent = None  # answered (or at least the peer is talking)
            elif now >= sent + config.heartbeat_timeout:
                self._declare_dead(config.heartbeat_timeout)
                return False
            else:
                return True
        if now - self.last_read >= interval and (
            config.heartbeat_without_calls or self._dispatcher.streams
        ):
            try:
                self._dispatcher.send_event(Ping(payload=os.urandom(8)))
            except LocalProtocolError as exc:
                logger.debug("no heartbeat on %r: the codec refuses PING (%s)", self, exc)
                self._config = _without_heartbeat(config)
                return True
            except StatusError:
                return False  # the connection is already gone
            self._ping_sent = now
        return True

    def _check_idle(self, now: float) -> bool:
        """Close an idle connection; False once it is closing."""
        idle = self._config.idle_timeout
        dispatcher = self._dispatcher
        if idle is None or dispatcher.streams or now - self.last_busy < idle:
            return True
        dispatcher.close_idle(f"idle for {idle:g}s")
        return False

    def _declare_dead(self, timeout: float) -> None:
        dispatcher = self._dispatcher
        reason = f"keepalive failed: the peer did not answer a PING within {timeout:g}s"
        logger.warning("%s from %s; closing the connection", reason, dispatcher.peer)
        dispatcher.declare_dead(reason)


def _without_heartbeat(config: LivenessConfig) -> LivenessConfig:
    return LivenessConfig(
        heartbeat_timeout=config.heartbeat_timeout, idle_timeout=config.idle_timeout
    )
