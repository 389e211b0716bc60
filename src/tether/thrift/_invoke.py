"""The client side of a thriftpy2 method: the coroutine a :class:`ThriftStub` exposes as
``stub.<method>`` (compiled with mypyc: it runs once per call)."""

from __future__ import annotations

from typing import Any

from .._client import _UNSET, Client
from .._exceptions import BizStatusError, StatusError
from .._metadata import MetadataLike
from .._status import Status
from ..encoding import PayloadCodec, RawCodec, ThriftStructCodec
from ._codecs import ArgsCodec, ResultCodec
from ._errors import ThriftApplicationError
from ._service import _is_oneway, _result_fields

#: TApplicationException.MISSING_RESULT: a reply whose result struct has no value.
MISSING_RESULT = 5
#: Statuses a server sends for what Thrift reports as a TApplicationException.
_APPLICATION_STATUSES = frozenset(
    {Status.UNIMPLEMENTED, Status.INTERNAL, Status.UNKNOWN, Status.INVALID_ARGUMENT}
)


def _as_thrift_error(exc: StatusError) -> StatusError:
    """A server-side failure as a Thrift application error; local outcomes (deadline,
    cancellation, lost connection) and biz errors stay as they are."""
    if isinstance(exc, BizStatusError | ThriftApplicationError):
        return exc
    if exc.status in _APPLICATION_STATUSES or any(
        k == ":tapplication-type" for k, _ in exc.trailers
    ):
        return ThriftApplicationError.from_status_error(exc)
    return exc


def make_invoke(client: Client, service_cls: Any, service_name: str, method: str) -> Any:
    """The coroutine function a :class:`ThriftStub` exposes as ``stub.<method>``
    (``service_name`` prefixes the path)."""
    args_cls = getattr(service_cls, f"{method}_args")
    request_codec = ArgsCodec(args_cls)
    arg_names = request_codec.names
    oneway = _is_oneway(service_cls, method)
    result_cls: Any = None if oneway else getattr(service_cls, f"{method}_result")
    fields = None if oneway else _result_fields(result_cls)
    # Without declared exceptions the reply decodes straight to the success value.
    plain = fields is not None and not fields[1]
    has_success = fields is not None and fields[0]
    response_codec: PayloadCodec[Any]
    if fields is None:
        response_codec = RawCodec()
    elif plain:
        response_codec = ResultCodec(result_cls)
    else:
        response_codec = ThriftStructCodec(result_cls)
    path = f"{service_name}/{method}"
    known = frozenset(arg_names)
    count = len(arg_names)

    async def invoke(
        *args: Any, timeout: Any = _UNSET, metadata: MetadataLike = None, **kwargs: Any
    ) -> Any:
        # Positional values go to the codec as they are (it maps them in field-id order).
        request: Any = args
        if kwargs or len(args) > count:
            request = args_cls(**_arguments(args, kwargs))
        try:
            result = await client._unary(
                path,
                request,
                request_codec,
                response_codec,
                timeout,
                metadata,
                False,
                oneway=oneway,
            )
        except StatusError as exc:
            converted = _as_thrift_error(exc)
            if converted is exc:
                raise
            raise converted from exc
        if plain:
            if result is None and has_success:
                raise _missing_result()
            return result
        return None if fields is None else _unpack(result, fields)

    def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs:
            values = dict(zip(arg_names, args, strict=False))
            values.update(kwargs)
            if not known.issuperset(values):
                unknown = sorted(set(values) - known)
                raise TypeError(f"{method}() got unexpected arguments {unknown}")
        elif len(args) > len(arg_names):
            raise TypeError(f"{method}() takes {len(arg_names)} arguments, got {len(args)}")
        else:
            values = dict(zip(arg_names, args, strict=False))
        return values

    return invoke


def _missing_result() -> ThriftApplicationError:
    # Also what a biz error looks like over Buffered/Framed, which carry no headers.
    return ThriftApplicationError(
        Status.INTERNAL, "the server returned no result", type=MISSING_RESULT
    )


def _unpack(result: Any, fields: tuple[bool, dict[type[BaseException], str]]) -> Any:
    has_success, exceptions = fields
    for field in exceptions.values():
        exc = getattr(result, field, None)
        if exc is not None:
            raise exc
    if has_success:
        value = result.success
        if value is None:
            raise _missing_result()
        return value
    return None
