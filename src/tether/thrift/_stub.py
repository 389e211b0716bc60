"""ThriftStub: a thriftpy2 service's methods as coroutines over a tether Client.

Not compiled: it caches each method in its instance dict (the methods themselves come
from the compiled ``_invoke.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._client import Client
from ._invoke import make_invoke
from ._service import method_names


class ThriftStub:
    """Async methods named as in the IDL, calling ``service_cls`` through ``client``.

    ``await stub.Method(arg1, arg2=...)`` returns the result's success value, raises the
    declared exception the server returned, or returns ``None`` for void and oneway
    methods (oneway calls do not wait for the server). Every method also takes
    ``timeout=`` and ``metadata=``.

    Errors: a server-side failure (unknown method, handler error, undecodable request)
    raises :class:`~tether.ThriftApplicationError`, which is both a thriftpy2
    ``TApplicationException`` (with the peer's ``type``, e.g. 1 or Kitex's 20 for an
    unknown method, 6 for a handler error) and a :class:`~tether.StatusError`; a biz error
    raises :class:`~tether.BizStatusError`; deadline, cancellation and connection loss
    raise :class:`~tether.StatusError` (DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE).
    """

    def __init__(self, client: Client, service_cls: Any, *, name: str | None = None) -> None:
        self._client = client
        self._service_cls = service_cls
        self._name = name or service_cls.__name__
        self._methods = set(method_names(service_cls))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in self._methods:
            raise AttributeError(f"{self._name} has no method {method!r}")
        invoke: Callable[..., Any] = make_invoke(
            self._client, self._service_cls, self._name, method
        )
        # Cached on the instance: later ``stub.Method`` lookups skip __getattr__.
        self.__dict__[method] = invoke
        return invoke
