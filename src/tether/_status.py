"""tether's status vocabulary: the 17 gRPC status codes (grpc/grpc doc/statuscodes.md)."""

from __future__ import annotations

import enum


@enum.unique
class Status(enum.IntEnum):
    """The outcome of a call. The values are gRPC's, so they travel unchanged on every protocol."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @classmethod
    def from_code(cls, code: int) -> Status:
        """Map a wire code to a Status; codes outside the vocabulary become UNKNOWN (as gRPC does)."""
        try:
            return cls(code)
        except ValueError:
            return cls.UNKNOWN
