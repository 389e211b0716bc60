"""Serving a thriftpy2 service definition with tether, and the IDL helpers the client
side shares (``_invoke.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._exceptions import ConfigError
from .._service import Cardinality, MethodSpec, Service
from ..encoding import PayloadCodec, RawCodec, ThriftStructCodec
from ._codecs import ArgsCodec, ResultCodec, SingleArgCodec, plain_handler


def method_names(service_cls: Any) -> list[str]:
    """The IDL method names of a thriftpy2 service class.

    Raises:
        ConfigError: ``service_cls`` is not a thriftpy2 service.
    """
    names = getattr(service_cls, "thrift_services", None)
    if names is None:
        raise ConfigError(f"{service_cls!r} is not a thriftpy2 service")
    return list(names)


def _is_oneway(service_cls: Any, name: str) -> bool:
    # thriftpy2 makes a ``<name>_result`` class for oneway methods too, flagged ``oneway``.
    return bool(getattr(getattr(service_cls, f"{name}_result", None), "oneway", True))


def _result_fields(result_cls: Any) -> tuple[bool, dict[type[BaseException], str]]:
    """Whether the result has ``success``, and exception class → result field name."""
    has_success = False
    exceptions: dict[type[BaseException], str] = {}
    for fid, spec in result_cls.thrift_spec.items():
        name = spec[1]
        if fid == 0:
            has_success = True
        elif len(spec) > 2 and isinstance(spec[2], type) and issubclass(spec[2], BaseException):
            exceptions[spec[2]] = name
    return has_success, exceptions


def thrift_service(service_cls: Any, handler: object, *, name: str | None = None) -> Service:
    """Serve ``handler``'s coroutine methods as the thriftpy2 service ``service_cls``.

    ``handler`` has an ``async def`` per IDL method taking the IDL's arguments by name
    (the call's :class:`~tether.ServerContext` is :func:`tether.current_context`).
    Declared exceptions it raises are returned in the result struct;
    :class:`~tether.BizStatusError` becomes a biz error; any other exception fails the
    call (over Thrift-family protocols: a TApplicationException INTERNAL_ERROR reading
    ``biz error: <exception>``, as Kitex answers; over tether's protocol: status UNKNOWN).
    Oneway methods get no reply. The service is named ``name`` (default: the IDL service
    name, which is what Kitex clients send as ``isn``); Buffered/Framed calls, which name
    no service, are routed by method name.

    Raises:
        ConfigError: ``service_cls`` is not a thriftpy2 service or a method is missing.
    """
    service = Service(name or service_cls.__name__)
    for method in method_names(service_cls):
        impl = getattr(handler, method, None)
        if impl is None or not inspect.iscoroutinefunction(impl):
            raise ConfigError(f"handler has no coroutine method {method!r}")
        oneway = _is_oneway(service_cls, method)
        args_cls = getattr(service_cls, f"{method}_args")
        request: PayloadCodec[Any] = ArgsCodec(args_cls)
        response: PayloadCodec[Any]
        if oneway:
            serve: Callable[..., Any] = _oneway_handler(impl)
            response = RawCodec()
        else:
            result_cls = getattr(service_cls, f"{method}_result")
            has_success, exceptions = _result_fields(result_cls)
            if exceptions:
                serve = _declaring_handler(impl, result_cls, has_success, exceptions)
                response = ThriftStructCodec(result_cls)
            elif _takes_positionally(impl, list(args_cls.thrift_spec.values())):
                # The one argument, decoded, is passed straight to the implementation.
                serve = impl
                request = SingleArgCodec(args_cls)
                response = ResultCodec(result_cls)
            else:  # the handler's coroutine is awaited as it is; its value is the result
                serve = plain_handler(impl)
                response = ResultCodec(result_cls)
        # Built here rather than by add_method, whose checks are for user handlers: a
        # plain handler is a function returning the implementation's coroutine.
        service.methods[method] = MethodSpec(
            name=method,
            cardinality=Cardinality.UNARY,
            request_codec=request,
            response_codec=response,
            handler=serve,
            oneway=oneway,
        )
    return service


def _takes_positionally(impl: Callable[..., Any], fields: list[tuple[Any, ...]]) -> bool:
    """Whether ``impl(value)`` is ``impl(name=value)`` for the only IDL argument: there
    is exactly one, and ``impl``'s first parameter is it, positional-or-keyword."""
    if len(fields) != 1:
        return False
    try:
        parameters = list(inspect.signature(impl).parameters.values())
    except (TypeError, ValueError):  # no signature to be had: the general path
        return False
    return (
        bool(parameters)
        and parameters[0].name == fields[0][1]
        and parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )


def _oneway_handler(impl: Callable[..., Any]) -> Callable[..., Any]:
    async def oneway(arguments: dict[str, Any]) -> bytes:
        await impl(**arguments)
        return b""

    return oneway


def _declaring_handler(
    impl: Callable[..., Any],
    result_cls: Any,
    has_success: bool,
    exceptions: dict[type[BaseException], str],
) -> Callable[..., Any]:
    """A handler whose declared exceptions are returned in the result struct."""
    declared = tuple(exceptions)

    async def call(arguments: dict[str, Any]) -> Any:
        result = result_cls()
        try:
            value = await impl(**arguments)
        except declared as exc:
            for exc_type, field in exceptions.items():
                if isinstance(exc, exc_type):
                    setattr(result, field, exc)
                    break
            return result
        if has_success:
            result.success = value
        return result

    return call
