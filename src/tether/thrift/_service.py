"""Serving a thriftpy2 service definition with tether, and the IDL helpers the client
side shares (``_invoke.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._exceptions import ConfigError
from .._service import Cardinality, Service
from ..encoding import RawCodec, ThriftStructCodec


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


def _arg_names(args_cls: Any) -> list[str]:
    return [spec[1] for _, spec in sorted(args_cls.thrift_spec.items())]


def _takes_positionally(args_cls: Any, arg_names: list[str]) -> bool:
    """Whether ``args_cls(*values)`` binds values in ``arg_names`` order (field-id order,
    which is how positional stub arguments are documented to map): true when the IDL
    declares the arguments in id order, as it nearly always does."""
    try:
        parameters = list(inspect.signature(args_cls.__init__).parameters)[1:]
    except (TypeError, ValueError):
        return False
    return parameters == arg_names


def _fields_are_attributes(args_cls: Any, arg_names: list[str]) -> bool:
    """Whether an ``args_cls`` instance's ``__dict__`` holds exactly its arguments (a plain
    thriftpy2 struct: every field set by ``__init__``, nothing else), so a handler can be
    called with ``**args.__dict__``."""
    try:
        instance = args_cls()
    except Exception:
        return False
    fields = getattr(instance, "__dict__", None)
    return fields is not None and sorted(fields) == sorted(arg_names)


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
        args_cls = getattr(service_cls, f"{method}_args")
        oneway = _is_oneway(service_cls, method)
        service.add_method(
            method,
            _make_handler(
                impl, args_cls, None if oneway else getattr(service_cls, f"{method}_result")
            ),
            Cardinality.UNARY,
            request=ThriftStructCodec(args_cls),
            response=RawCodec()
            if oneway
            else ThriftStructCodec(getattr(service_cls, f"{method}_result")),
            oneway=oneway,
        )
    return service


def _make_handler(impl: Callable[..., Any], args_cls: Any, result_cls: Any) -> Callable[..., Any]:
    arg_names = _arg_names(args_cls)
    by_dict = _fields_are_attributes(args_cls, arg_names)
    count = len(arg_names)

    def arguments(args: Any) -> dict[str, Any]:
        if by_dict:
            fields: dict[str, Any] = args.__dict__
            if len(fields) == count:  # a plain decoded struct: exactly its arguments
                return fields
        return {n: getattr(args, n) for n in arg_names}

    if result_cls is None:

        async def oneway(args: Any) -> bytes:
            await impl(**arguments(args))
            return b""

        return oneway
    has_success, exceptions = _result_fields(result_cls)
    declared = tuple(exceptions)

    async def call(args: Any) -> Any:
        result = result_cls()
        # arguments(), inlined: a plain decoded struct's __dict__ is exactly its arguments.
        fields = args.__dict__ if by_dict else None
        if fields is None or len(fields) != count:
            fields = {n: getattr(args, n) for n in arg_names}
        try:
            value = await impl(**fields)
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
