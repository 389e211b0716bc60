"""Protobuf services from protoc-generated ``*_pb2`` modules: no grpcio at run time.

A ``*_pb2`` module (``protoc --python_out``, e.g. from grpcio-tools) holds the file
descriptor with every service: its full name (``pkg.Service``), methods, their message
types and whether each side streams. That is all a gRPC server or client needs; the
``*_pb2_grpc`` stubs are not used.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .._client import Client
from .._exceptions import ConfigError
from .._service import Cardinality, Service
from .._stub import Stub
from ..encoding import ProtobufCodec


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtoMethod:
    """One RPC of a protobuf service, as its descriptor states it."""

    name: str
    path: str
    cardinality: Cardinality
    request_type: type[Message]
    response_type: type[Message]


def service_descriptor(module: ModuleType | FileDescriptor, name: str) -> ServiceDescriptor:
    """The descriptor of service ``name`` (short ``Echo`` or full ``pkg.Echo``) in a
    ``*_pb2`` module (or its ``DESCRIPTOR``).

    Raises:
        ConfigError: ``module`` is not a ``*_pb2`` module or has no such service.
    """
    descriptor = (
        module if isinstance(module, FileDescriptor) else getattr(module, "DESCRIPTOR", None)
    )
    if not isinstance(descriptor, FileDescriptor):
        raise ConfigError(f"{module!r} is not a protoc-generated *_pb2 module")
    services = descriptor.services_by_name
    found = services.get(name)
    if found is None:
        found = next((s for s in services.values() if s.full_name == name), None)
    if found is None:
        known = ", ".join(sorted(services)) or "none"
        raise ConfigError(f"{descriptor.name} has no service {name!r} (it has: {known})")
    return found


def proto_methods(service: ServiceDescriptor) -> list[ProtoMethod]:
    """Every method of ``service`` in declaration order."""
    return [
        ProtoMethod(
            name=method.name,
            path=f"/{service.full_name}/{method.name}",
            cardinality=Cardinality((method.client_streaming, method.server_streaming)),
            request_type=GetMessageClass(method.input_type),
            response_type=GetMessageClass(method.output_type),
        )
        for method in service.methods
    ]


def service_from_pb2(
    module: ModuleType | FileDescriptor, name: str, handler: object | None = None
) -> Service:
    """A :class:`~tether.Service` named ``pkg.Service`` for the protobuf service ``name``.

    ``handler`` has one coroutine (unary, client-streaming) or async generator
    (server-streaming, bidi) per RPC, named as in the ``.proto`` and taking
    ``(request)`` or ``(request, context)``; streamed requests arrive as an async
    iterator. The resulting service can be served by any :class:`~tether.Server`, next
    to every other service, over gRPC and every other protocol. With ``handler=None`` the
    service only describes the methods (for clients).

    Raises:
        ConfigError: no such service, a method missing from ``handler``, or a method of
            the wrong kind (e.g. a plain coroutine for a server-streaming RPC).
    """
    descriptor = service_descriptor(module, name)
    service = Service(descriptor.full_name)
    for method in proto_methods(descriptor):
        impl: Any = None
        if handler is not None:
            impl = getattr(handler, method.name, None)
            if impl is None or not (
                inspect.iscoroutinefunction(impl) or inspect.isasyncgenfunction(impl)
            ):
                raise ConfigError(
                    f"handler {type(handler).__name__} has no async method {method.name!r} "
                    f"for {descriptor.full_name}/{method.name}"
                )
        service.add_method(
            method.name,
            impl,
            method.cardinality,
            request=ProtobufCodec(method.request_type),
            response=ProtobufCodec(method.response_type),
        )
    return service


def stub(client: Client, module: ModuleType | FileDescriptor, name: str) -> Stub:
    """Typed calls of the protobuf service ``name`` through ``client``.

    ``await stub.Unary(request)`` returns the reply; server-streaming methods return a
    :class:`~tether.Call` to iterate; client- and bidi-streaming methods return a
    :class:`~tether.Call` to ``send()`` on. Every method takes ``timeout=`` and
    ``metadata=`` (unary also ``with_call=True`` for the response metadata).

    Raises:
        ConfigError: no such service in ``module``.
    """
    return client.stub(service_from_pb2(module, name))
