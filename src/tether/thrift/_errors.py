"""``ThriftApplicationError``: the one exception of tether's hierarchy that also derives
from a third-party class (thriftpy2's ``TApplicationException``). It lives here, not in
``tether._exceptions``, so that ``import tether`` does not import thriftpy2 (about 13 MiB
of resident memory); ``tether.ThriftApplicationError`` loads it on first use.
"""

from __future__ import annotations

from thriftpy2.thrift import TApplicationException

from .._exceptions import StatusError
from .._status import Status
from .._types import MetadataPairs

#: TApplicationException types (Apache Thrift's, plus Kitex's 20 UnknownService).
_STATUS_OF_APPLICATION_TYPE = {
    1: Status.UNIMPLEMENTED,
    20: Status.UNIMPLEMENTED,
    7: Status.INVALID_ARGUMENT,
    6: Status.INTERNAL,
}
_APPLICATION_TYPE_OF_STATUS = {
    Status.UNIMPLEMENTED: TApplicationException.UNKNOWN_METHOD,
    Status.INVALID_ARGUMENT: TApplicationException.PROTOCOL_ERROR,
    Status.INTERNAL: TApplicationException.INTERNAL_ERROR,
}


class ThriftApplicationError(StatusError, TApplicationException):  # type: ignore[misc]
    """A Thrift call failed with a TApplicationException (unknown method, handler error...).

    Both a :class:`StatusError` (``status``, ``message``, ``trailers``) and a thriftpy2
    ``TApplicationException`` (``type``, ``message``), so Thrift code catching
    ``TApplicationException`` and tether code catching ``StatusError`` both see it.
    ``type`` is the exception type the server sent (e.g. 1 UNKNOWN_METHOD, 6
    INTERNAL_ERROR, Kitex's 20 for an unknown method), or derived from the status when
    the protocol carries none (tether's own protocol).
    """

    def __init__(
        self,
        status: Status,
        message: str = "",
        *,
        type: int | None = None,
        trailers: MetadataPairs = (),
    ) -> None:
        StatusError.__init__(self, status, message, trailers=trailers)
        # TApplicationException's __init__ (reached through the MRO) reset ``args``.
        self.args = (f"{status.name}: {message}" if message else status.name,)
        self.type = (
            type
            if type is not None
            else _APPLICATION_TYPE_OF_STATUS.get(status, TApplicationException.UNKNOWN)
        )
        self.message = message

    @classmethod
    def from_status_error(cls, error: StatusError) -> ThriftApplicationError:
        """The same failure as a Thrift application error (type from ``:tapplication-type``)."""
        app_type: int | None = None
        for key, value in error.trailers:
            if key == ":tapplication-type":
                try:
                    app_type = int(value)
                except ValueError:
                    app_type = None
        return cls(error.status, error.message, type=app_type, trailers=error.trailers)

    @staticmethod
    def status_of_type(app_type: int) -> Status:
        """The status a TApplicationException type maps to (1/20 → UNIMPLEMENTED ...)."""
        return _STATUS_OF_APPLICATION_TYPE.get(app_type, Status.UNKNOWN)

    def __str__(self) -> str:
        return Exception.__str__(self)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_application_error, (self.status, self.message, self.type, self.trailers))


def _rebuild_application_error(
    status: Status, message: str, app_type: int, trailers: MetadataPairs
) -> ThriftApplicationError:
    return ThriftApplicationError(status, message, type=app_type, trailers=trailers)
