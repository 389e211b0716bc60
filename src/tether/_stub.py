"""Stubs: a :class:`~tether.Service`'s methods as callables bound to a client."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from ._calls import Call
from ._client import _UNSET
from ._metadata import MetadataLike
from ._service import Cardinality, MethodSpec, Service

if TYPE_CHECKING:
    from ._client import Client

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_SERVER_STREAM: Final = Cardinality.SERVER_STREAM
_UNARY: Final = Cardinality.UNARY


class Stub:
    """Methods of a :class:`Service`, called through a :class:`Client`.

    Unary methods return a coroutine to await for the reply; server-streaming methods return a
    :class:`Call` to iterate; client- and bidi-streaming methods return a :class:`Call`
    to ``send()`` on. Every method takes ``timeout=`` and ``metadata=``.
    """

    def __init__(self, client: Client, service: Service) -> None:
        self._client = client
        self._service = service
        self._bound: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        bound = self._bound.get(name)
        if bound is not None:
            return bound
        try:
            spec = self._service.methods[name]
        except KeyError:
            raise AttributeError(f"{self._service.name} has no method {name!r}") from None
        bound = self._bound[name] = _bind(self._client, self._service.name, spec)
        return bound

    def __dir__(self) -> list[str]:
        return sorted(self._service.methods)


def _bind(client: Client, service: str, spec: MethodSpec) -> Callable[..., Any]:
    path = f"{service}/{spec.name}"
    rq, rs = spec.request_codec, spec.response_codec
    if spec.cardinality is _UNARY:
        # A plain function returning the call's coroutine: one coroutine per call, not two.
        def unary(
            request: Any,
            *,
            timeout: Any = _UNSET,
            metadata: MetadataLike = None,
            with_call: bool = False,
        ) -> Coroutine[Any, Any, Any]:
            return client._unary(
                path, request, rq, rs, timeout, metadata, with_call, oneway=spec.oneway
            )

        return unary
    if spec.cardinality is _SERVER_STREAM:

        def server_stream(
            request: Any, *, timeout: Any = _UNSET, metadata: MetadataLike = None
        ) -> Call[Any, Any]:
            return client._stream_call(path, rq, rs, timeout, metadata, (request,))

        return server_stream

    def streaming(*, timeout: Any = _UNSET, metadata: MetadataLike = None) -> Call[Any, Any]:
        return client._stream_call(path, rq, rs, timeout, metadata, None)

    return streaming
