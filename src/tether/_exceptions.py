"""Every exception tether raises, in one place.

The tree::

    RPCError
    ├── TransportError                    the byte pipe failed
    │   ├── ConnectError                  could not establish a connection (refused, timeout, TLS)
    │   ├── ClosedResourceError           we closed it, then used it
    │   ├── BrokenResourceError           the peer or the OS broke it
    │   └── BusyResourceError             two tasks used a resource that allows one at a time
    ├── ProtocolError                     the bytes on the wire broke the protocol
    │   ├── LocalProtocolError            we tried to send something the protocol forbids
    │   └── RemoteProtocolError           the peer sent something the protocol forbids
    ├── StatusError(status, message)      a call ended with a non-OK status (travels on the wire)
    │   └── StreamResetError              the peer reset the stream (cancel / refuse)
    └── ConfigError                       invalid configuration, address or registry entry

``ProtocolError`` carries ``error_code``: the wire code that goes into the GOAWAY/close
frame, so the connection owner only has to flush. Errors are mapped once at each
boundary with ``raise New(...) from exc``.
"""

from __future__ import annotations

import enum

from ._status import Status
from ._types import MetadataPairs


class RPCError(Exception):
    """Base class of every tether error."""


# -- transport ---------------------------------------------------------------------------


class TransportError(RPCError):
    """The byte pipe below the protocol failed."""


class ConnectError(TransportError):
    """A connection could not be established: refused, unreachable, timed out or TLS failed."""


class ClosedResourceError(TransportError):
    """The resource was closed by this side and then used."""


class BrokenResourceError(TransportError):
    """The resource was broken by the peer or the OS (reset, EOF mid-frame, I/O error)."""


class BusyResourceError(TransportError):
    """Another task is already using a resource that allows one user at a time."""


# -- protocol ----------------------------------------------------------------------------


class ErrorCode(enum.IntEnum):
    """Connection-level error codes carried by GOAWAY (values follow HTTP/2's)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD

    @classmethod
    def from_code(cls, code: int) -> ErrorCode:
        """Map a wire code to an ErrorCode; unknown codes become INTERNAL_ERROR."""
        try:
            return cls(code)
        except ValueError:
            return cls.INTERNAL_ERROR


class ProtocolError(RPCError):
    """The protocol was violated. Do not instantiate directly: use Local/RemoteProtocolError."""

    def __init__(self, message: str, *, error_code: ErrorCode = ErrorCode.PROTOCOL_ERROR) -> None:
        if type(self) is ProtocolError:
            raise TypeError(
                "instantiate LocalProtocolError or RemoteProtocolError, not ProtocolError"
            )
        super().__init__(message)
        self.error_code = error_code


class LocalProtocolError(ProtocolError):
    """We asked to send something the protocol forbids (a bug in the caller)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids; the connection must close."""


# -- calls -------------------------------------------------------------------------------


class StatusError(RPCError):
    """A call ended with a non-OK status. Expected errors: raise it in a handler to fail a call.

    Args:
        status: the status code (one of the 17 gRPC codes).
        message: a human-readable message; travels on the wire.
        details: optional binary details (e.g. ``grpc-status-details-bin``).
        trailers: trailing metadata received with the status, if any.
    """

    def __init__(
        self,
        status: Status,
        message: str = "",
        *,
        details: bytes | None = None,
        trailers: MetadataPairs = (),
    ) -> None:
        super().__init__(f"{status.name}: {message}" if message else status.name)
        self.status = status
        self.message = message
        self.details = details
        self.trailers = trailers

    def __reduce__(self) -> tuple[object, ...]:  # keep picklable despite keyword-only args
        return (
            _rebuild_status_error,
            (type(self), self.status, self.message, self.details, self.trailers),
        )


def _rebuild_status_error(
    cls: type[StatusError],
    status: Status,
    message: str,
    details: bytes | None,
    trailers: MetadataPairs,
) -> StatusError:
    return cls(status, message, details=details, trailers=trailers)


class StreamResetError(StatusError):
    """The peer reset the stream (it cancelled the call or refused the stream)."""


class ConfigError(RPCError, ValueError):
    """Invalid configuration: a bad address, an unknown scheme or protocol, a bad option."""


__all__ = [
    "BrokenResourceError",
    "BusyResourceError",
    "ClosedResourceError",
    "ConfigError",
    "ConnectError",
    "ErrorCode",
    "LocalProtocolError",
    "ProtocolError",
    "RPCError",
    "RemoteProtocolError",
    "StatusError",
    "StreamResetError",
    "TransportError",
]
