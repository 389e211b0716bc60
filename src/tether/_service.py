"""Services defined in plain Python: a name and methods of four cardinalities."""

from __future__ import annotations

import collections.abc
import enum
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ._exceptions import ConfigError
from .encoding import PayloadCodec, codec_for_type

F = TypeVar("F", bound=Callable[..., Any])


class Cardinality(enum.Enum):
    """How many messages each side sends: ``(client_streaming, server_streaming)``."""

    UNARY = (False, False)
    CLIENT_STREAM = (True, False)
    SERVER_STREAM = (False, True)
    BIDI_STREAM = (True, True)

    @property
    def client_streaming(self) -> bool:
        """The client sends a stream of messages."""
        return self.value[0]

    @property
    def server_streaming(self) -> bool:
        """The server sends a stream of messages."""
        return self.value[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodSpec:
    """One method: its name, cardinality, payload codecs and (server side) its handler.

    ``oneway``: the client sends and does not wait for a reply (Thrift oneway).
    """

    name: str
    cardinality: Cardinality
    request_codec: PayloadCodec[Any]
    response_codec: PayloadCodec[Any]
    handler: Callable[..., Any] | None = None
    takes_context: bool = False
    oneway: bool = False


_INFER: Any = object()


def _stream_item(annotation: Any) -> Any:
    """``AsyncIterator[X]`` / ``AsyncIterable[X]`` / ``AsyncGenerator[X, None]`` → ``X``."""
    origin = typing.get_origin(annotation)
    if origin in (
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
    ):
        args = typing.get_args(annotation)
        return args[0] if args else None
    return annotation


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {
            k: v for k, v in getattr(fn, "__annotations__", {}).items() if not isinstance(v, str)
        }


def _resolve(tp: Any) -> PayloadCodec[Any]:
    if isinstance(tp, PayloadCodec):
        return tp
    if tp is Any or tp is inspect.Parameter.empty:
        tp = None
    return codec_for_type(tp)


class Service:
    """A named group of methods served together.

    Example::

        greeter = Service("demo.Greeter")

        @greeter.unary
        async def Hello(request: dict, ctx: ServerContext) -> dict:
            return {"message": f"hello {request['name']}"}

    Handlers take ``(request)`` or ``(request, context)``. Streaming requests arrive as an
    async iterator; streaming responses are async generators. Payload codecs come from
    the annotations (protobuf message, Thrift struct, ``bytes`` → raw, anything else →
    msgpack) or from the ``request=`` / ``response=`` arguments (a type or a codec).
    """

    def __init__(self, name: str) -> None:
        if not name or "/" in name:
            raise ConfigError(f"invalid service name {name!r}")
        self.name = name
        self.methods: dict[str, MethodSpec] = {}

    def __repr__(self) -> str:
        return f"<Service {self.name} methods={sorted(self.methods)}>"

    def add_method(
        self,
        name: str,
        handler: Callable[..., Any] | None,
        cardinality: Cardinality,
        *,
        request: Any = _INFER,
        response: Any = _INFER,
        oneway: bool = False,
    ) -> MethodSpec:
        """Register a method (``handler`` may be ``None`` for a client-side description).

        Raises:
            ConfigError: the name is taken or the handler has the wrong shape.
        """
        if not name or "/" in name:
            raise ConfigError(f"invalid method name {name!r}")
        if name in self.methods:
            raise ConfigError(f"{self.name}/{name} is already defined")
        takes_context = False
        if handler is not None:
            hints = _hints(handler)
            params = list(inspect.signature(handler).parameters.values())
            positional = [
                p
                for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
            ]
            if not 1 <= len(positional) <= 2:
                raise ConfigError(
                    f"handler {name} must take (request) or (request, context), "
                    f"not {len(positional)} arguments"
                )
            takes_context = len(positional) == 2
            if request is _INFER:
                request = hints.get(positional[0].name)
                if cardinality.client_streaming:
                    request = _stream_item(request)
            if response is _INFER:
                response = hints.get("return")
                if cardinality.server_streaming:
                    response = _stream_item(response)
            if cardinality.server_streaming and not inspect.isasyncgenfunction(handler):
                raise ConfigError(f"streaming-response handler {name} must be an async generator")
            if not cardinality.server_streaming and not inspect.iscoroutinefunction(handler):
                raise ConfigError(f"handler {name} must be an async function")
        spec = MethodSpec(
            name=name,
            cardinality=cardinality,
            request_codec=_resolve(None if request is _INFER else request),
            response_codec=_resolve(None if response is _INFER else response),
            handler=handler,
            takes_context=takes_context,
            oneway=oneway,
        )
        self.methods[name] = spec
        return spec

    def _decorator(
        self, cardinality: Cardinality, fn: F | None, name: str | None, request: Any, response: Any
    ) -> Any:
        def register(func: F) -> F:
            self.add_method(
                name or func.__name__, func, cardinality, request=request, response=response
            )
            return func

        return register(fn) if fn is not None else register

    @overload
    def unary(self, fn: F) -> F: ...
    @overload
    def unary(
        self, *, name: str | None = None, request: Any = _INFER, response: Any = _INFER
    ) -> Callable[[F], F]: ...
    def unary(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        request: Any = _INFER,
        response: Any = _INFER,
    ) -> Any:
        """Decorator: one request, one response."""
        return self._decorator(Cardinality.UNARY, fn, name, request, response)

    @overload
    def server_stream(self, fn: F) -> F: ...
    @overload
    def server_stream(
        self, *, name: str | None = None, request: Any = _INFER, response: Any = _INFER
    ) -> Callable[[F], F]: ...
    def server_stream(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        request: Any = _INFER,
        response: Any = _INFER,
    ) -> Any:
        """Decorator: one request, a stream of responses (an async generator)."""
        return self._decorator(Cardinality.SERVER_STREAM, fn, name, request, response)

    @overload
    def client_stream(self, fn: F) -> F: ...
    @overload
    def client_stream(
        self, *, name: str | None = None, request: Any = _INFER, response: Any = _INFER
    ) -> Callable[[F], F]: ...
    def client_stream(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        request: Any = _INFER,
        response: Any = _INFER,
    ) -> Any:
        """Decorator: a stream of requests (an async iterator), one response."""
        return self._decorator(Cardinality.CLIENT_STREAM, fn, name, request, response)

    @overload
    def bidi_stream(self, fn: F) -> F: ...
    @overload
    def bidi_stream(
        self, *, name: str | None = None, request: Any = _INFER, response: Any = _INFER
    ) -> Callable[[F], F]: ...
    def bidi_stream(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        request: Any = _INFER,
        response: Any = _INFER,
    ) -> Any:
        """Decorator: streams both ways (handler: async generator over an async iterator)."""
        return self._decorator(Cardinality.BIDI_STREAM, fn, name, request, response)
