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
    │   ├── StreamResetError              the peer reset the stream (cancel / refuse)
    │   ├── BizStatusError(code, message, extra)   the handler's business error (Kitex biz-status)
    │   └── ThriftApplicationError        also a thriftpy2 TApplicationException (Thrift stubs);
    │                                     defined in tether.thrift._errors so that thriftpy2 is
    │                                     imported only by code that uses Thrift
    └── ConfigError                       invalid configuration, address or registry entry

``ProtocolError`` carries ``error_code``: the wire code that goes into the GOAWAY/close
frame, so the connection owner only has to flush. Errors are mapped once at each
boundary with ``raise New(...) from exc``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

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
    """The peer reset the stream (it cancelled the call or refused the stream).

    ``error_code`` is the wire protocol's reset code when it has one (HTTP/2's
    RST_STREAM code; ``ErrorCode.REFUSED_STREAM`` means the peer did not process the
    call, so it may be sent again), else ``None``.
    """

    def __init__(
        self,
        status: Status,
        message: str = "",
        *,
        details: bytes | None = None,
        trailers: MetadataPairs = (),
        error_code: int | None = None,
    ) -> None:
        super().__init__(status, message, details=details, trailers=trailers)
        self.error_code = error_code

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_stream_reset_error,
            (type(self), self.status, self.message, self.error_code),
        )


def _rebuild_stream_reset_error(
    cls: type[StreamResetError], status: Status, message: str, error_code: int | None
) -> StreamResetError:
    return cls(status, message, error_code=error_code)


#: Reply metadata keys of a business error (Kitex's TTHeader str keys, gRPC trailers).
BIZ_STATUS_KEY = "biz-status"
BIZ_MESSAGE_KEY = "biz-message"
BIZ_EXTRA_KEY = "biz-extra"


class BizStatusError(StatusError):
    """A business error raised by a handler: Kitex's ``kerrors.BizStatusError``.

    It is a :class:`StatusError` (status INTERNAL, as Kitex maps a biz error over gRPC)
    because it is a call outcome that travels on the wire and that callers catching
    ``StatusError`` must see; it adds an application-defined ``code`` and ``extra``
    strings. On the wire it is the reply metadata ``biz-status`` (decimal code),
    ``biz-message`` and ``biz-extra`` (a JSON object of strings); Thrift-family protocols
    carry it on a normal REPLY (Kitex's layout), tether's protocol and gRPC with status
    INTERNAL. The client raises the same class with the same fields.

    Args:
        code: the business status code (non-zero; an int32).
        message: human-readable text.
        extra: optional string key/values.
    """

    def __init__(
        self,
        code: int,
        message: str = "",
        extra: Mapping[str, str] | None = None,
        *,
        trailers: MetadataPairs = (),
    ) -> None:
        if not -(2**31) <= code < 2**31 or code == 0:
            raise ValueError("a biz status code is a non-zero int32")
        super().__init__(Status.INTERNAL, message, trailers=trailers)
        self.code = code
        self.extra: dict[str, str] = dict(extra or {})
        self.args = (f"biz error: code={code}, msg={message}",)

    def to_pairs(self) -> MetadataPairs:
        """The reply metadata pairs that carry this error."""
        pairs: list[tuple[str, str | bytes]] = [
            (BIZ_STATUS_KEY, str(self.code)),
            (BIZ_MESSAGE_KEY, self.message),
        ]
        if self.extra:
            import json  # only biz errors with extras need it

            pairs.append((BIZ_EXTRA_KEY, json.dumps(self.extra, separators=(",", ":"))))
        return tuple(pairs)

    @classmethod
    def from_pairs(cls, pairs: MetadataPairs) -> BizStatusError | None:
        """The error that reply metadata ``pairs`` carry, or ``None`` (no or zero ``biz-status``).

        A malformed ``biz-status`` or ``biz-extra`` is reported as code 1 / no extra
        rather than hiding that the call failed.
        """
        status = message = extra = None
        for key, value in pairs:
            if key == BIZ_STATUS_KEY:
                status = value
            elif key == BIZ_MESSAGE_KEY:
                message = value
            elif key == BIZ_EXTRA_KEY:
                extra = value
        if status is None:
            return None
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
        try:
            code = int(text)
        except ValueError:
            code = 1
        if code == 0:
            return None
        if not -(2**31) <= code < 2**31:
            code = 1
        parsed: dict[str, str] = {}
        if extra:
            import json

            try:
                loaded = json.loads(extra)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                parsed = {str(k): str(v) for k, v in loaded.items()}
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return cls(code, message or "", parsed, trailers=pairs)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_biz_error, (self.code, self.message, self.extra, self.trailers))


def _rebuild_biz_error(
    code: int, message: str, extra: dict[str, str], trailers: MetadataPairs
) -> BizStatusError:
    return BizStatusError(code, message, extra, trailers=trailers)


class ConfigError(RPCError, ValueError):
    """Invalid configuration: a bad address, an unknown scheme or protocol, a bad option."""


__all__ = [
    "BizStatusError",
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
