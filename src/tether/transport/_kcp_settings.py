"""The tuning of a ``kcp://`` session (MTU, windows, heartbeat and timeouts), read from
the URL's query and checked once, when the address is parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigError
from ._base import Address
from ._kcp_wire import HEADER_SIZE, KCP_OVERHEAD, MAX_DATAGRAM, MESSAGE_FRAGMENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class KCPSettings:
    """Tuning of a ``kcp://`` session; each field can be set as a URL query parameter,
    e.g. ``kcp://host:port?idle_timeout=5&heartbeat=1&mtu=1200``.

    Attributes:
        mtu: the largest KCP output (bytes); a datagram adds a 16-byte session header.
        send_window / receive_window: KCP windows in segments (``window`` sets both;
            at least 16, the fragments of one stream message).
        interval: KCP's internal tick (ms) while data is unacknowledged.
        heartbeat: seconds without hearing from the peer before we PING it.
        idle_timeout: seconds without hearing from the peer before the session is lost.
        handshake_timeout: seconds a server keeps a half-finished handshake.
        close_timeout: seconds ``close()`` waits for the peer to acknowledge our data
            before it gives up and resets the session.
        write_timeout: seconds our data may wait unacknowledged with no progress at all
            (a peer that stopped reading, TCP's ``TCP_USER_TIMEOUT``) before the session
            is lost; heartbeats alone do not keep such a session alive.
        write_high_water: unacknowledged segments above which writes pause (``drain``
            waits, ``is_write_paused`` is true); they resume below a quarter of it.
    """

    mtu: int = 1400
    send_window: int = 256
    receive_window: int = 256
    interval: int = 10
    heartbeat: float = 2.0
    idle_timeout: float = 15.0
    handshake_timeout: float = 10.0
    close_timeout: float = 10.0
    write_timeout: float = 30.0
    write_high_water: int = 512

    def __post_init__(self) -> None:
        if not KCP_OVERHEAD + 2 <= self.mtu <= MAX_DATAGRAM - HEADER_SIZE:
            raise ConfigError(f"kcp mtu {self.mtu} is out of range")
        if min(self.send_window, self.receive_window) < MESSAGE_FRAGMENTS:
            raise ConfigError(
                f"kcp windows must hold at least {MESSAGE_FRAGMENTS} segments (one message)"
            )
        if not 1 <= self.interval <= 5000:
            raise ConfigError("kcp interval must be 1..5000 ms")
        for name in (
            "heartbeat",
            "idle_timeout",
            "handshake_timeout",
            "close_timeout",
            "write_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"kcp {name} must be positive")
        if self.heartbeat >= self.idle_timeout:
            raise ConfigError("kcp heartbeat must be shorter than idle_timeout")
        if self.write_high_water < 4:
            raise ConfigError("kcp write_high_water must be at least 4 segments")

    @property
    def mss(self) -> int:
        """Stream bytes one KCP segment carries."""
        return self.mtu - KCP_OVERHEAD

    @classmethod
    def from_address(cls, address: Address) -> KCPSettings:
        """Settings from the URL's query (unknown parameters are a ``ConfigError``)."""
        ints = {"mtu", "send_window", "receive_window", "interval", "write_high_water"}
        floats = {
            "heartbeat",
            "idle_timeout",
            "handshake_timeout",
            "close_timeout",
            "write_timeout",
        }
        values: dict[str, Any] = {}
        for name in address.query:
            raw = address.param(name)
            assert raw is not None
            try:
                if name == "window":
                    values["send_window"] = values["receive_window"] = int(raw)
                elif name in ints:
                    values[name] = int(raw)
                elif name in floats:
                    values[name] = float(raw)
                else:
                    raise ConfigError(f"{address.url}: unknown kcp parameter {name!r}")
            except ValueError as exc:
                raise ConfigError(f"{address.url}: bad value for {name}: {raw!r}") from exc
        return cls(**values)
