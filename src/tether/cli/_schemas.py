"""What ``SERVICE/METHOD`` means: cardinality and message types, from the IDLs.

Protobuf methods come from file descriptors (the demo's ``echo.proto`` and every
``--proto-module``, a protoc-generated ``*_pb2`` module); Thrift methods
from thriftpy2 modules (the demo's ``echo.thrift`` and every ``--thrift FILE``). Nothing
here touches the network.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .._client_codecs import split_method
from .._exceptions import ConfigError
from .._service import Cardinality
from ._errors import UsageError


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtoMethod:
    """A protobuf method: messages of ``request_type`` in, ``response_type`` out."""

    path: str
    cardinality: Cardinality
    request_type: type[Message]
    response_type: type[Message]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThriftMethod:
    """A Thrift method: one ``args_cls`` struct in, the result (or nothing if oneway)."""

    path: str
    service_name: str
    service_cls: Any
    name: str
    args_cls: Any
    arg_names: tuple[str, ...]
    oneway: bool

    @property
    def cardinality(self) -> Cardinality:
        """Thrift methods are always unary."""
        return Cardinality.UNARY


MethodSchema = ProtoMethod | ThriftMethod


class Schemas:
    """The services ``tether call`` knows, by name. Later additions win on a name clash."""

    def __init__(self) -> None:
        self._proto: dict[str, ServiceDescriptor] = {}
        self._thrift: dict[str, Any] = {}

    def add_proto_file(self, descriptor: FileDescriptor) -> None:
        """Every service of a compiled ``.proto`` file (``*_pb2.DESCRIPTOR``)."""
        for service in descriptor.services_by_name.values():
            self._thrift.pop(service.full_name, None)
            self._proto[service.full_name] = service

    def add_thrift_module(self, module: Any) -> None:
        """Every service of a thriftpy2-loaded module, named as in the IDL."""
        for service_cls in module.__thrift_meta__["services"]:
            self._proto.pop(service_cls.__name__, None)
            self._thrift[service_cls.__name__] = service_cls

    def add_thrift_file(self, path: Path) -> None:
        """Load a Thrift IDL file and add its services.

        Raises:
            UsageError: the file is missing or not valid Thrift.
        """
        import thriftpy2

        if not path.is_file():
            raise UsageError(f"--thrift {path}: no such file")
        try:
            module = thriftpy2.load(str(path))
        except Exception as exc:  # thriftpy2 raises parser errors of several kinds
            raise UsageError(f"--thrift {path}: {exc}") from exc
        self.add_thrift_module(module)

    def add_proto_module(self, spec: str) -> None:
        """Every service of a protoc-generated ``*_pb2`` module, given as an importable
        dotted name (``mypkg.echo_pb2``) or a ``.py`` file path.

        Raises:
            UsageError: the module cannot be imported or is not a ``*_pb2`` module.
        """
        module = _import_proto_module(spec)
        descriptor = getattr(module, "DESCRIPTOR", None)
        if not isinstance(descriptor, FileDescriptor):
            raise UsageError(f"--proto-module {spec}: not a protoc-generated *_pb2 module")
        self.add_proto_file(descriptor)

    def service_names(self) -> list[str]:
        """Every known service, sorted."""
        return sorted([*self._proto, *self._thrift])

    def resolve(self, path: str) -> MethodSchema:
        """The method ``SERVICE/METHOD`` names.

        Raises:
            UsageError: the path is malformed, or names an unknown service or method.
        """
        try:
            service_name, method_name = split_method(path)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        if service_name in self._proto:
            return _proto_method(self._proto[service_name], method_name)
        if service_name in self._thrift:
            return _thrift_method(service_name, self._thrift[service_name], method_name)
        known = ", ".join(self.service_names()) or "none"
        raise UsageError(f"unknown service {service_name!r} (known: {known})")


def _unknown_method(service: str, method: str, known: Iterable[str]) -> UsageError:
    return UsageError(
        f"service {service!r} has no method {method!r} (it has: {', '.join(sorted(known))})"
    )


def _proto_method(service: ServiceDescriptor, name: str) -> ProtoMethod:
    method = service.methods_by_name.get(name)
    if method is None:
        raise _unknown_method(service.full_name, name, service.methods_by_name)
    return ProtoMethod(
        path=f"{service.full_name}/{name}",
        cardinality=Cardinality((method.client_streaming, method.server_streaming)),
        request_type=GetMessageClass(method.input_type),
        response_type=GetMessageClass(method.output_type),
    )


def _thrift_method(service_name: str, service_cls: Any, name: str) -> ThriftMethod:
    if name not in service_cls.thrift_services:
        raise _unknown_method(service_name, name, service_cls.thrift_services)
    args_cls = getattr(service_cls, f"{name}_args")
    result_cls = getattr(service_cls, f"{name}_result", None)
    return ThriftMethod(
        path=f"{service_name}/{name}",
        service_name=service_name,
        service_cls=service_cls,
        name=name,
        args_cls=args_cls,
        arg_names=tuple(spec[1] for _, spec in sorted(args_cls.thrift_spec.items())),
        oneway=bool(getattr(result_cls, "oneway", True)),
    )


def _import_proto_module(spec: str) -> ModuleType:
    """Import ``spec``: a ``.py`` file (its folder joins ``sys.path`` so that generated
    imports of sibling ``*_pb2`` modules work) or a dotted module name."""
    try:
        if spec.endswith(".py") or "/" in spec:
            path = Path(spec).resolve()
            if not path.is_file():
                raise UsageError(f"--proto-module {spec}: no such file")
            folder = str(path.parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            return importlib.import_module(path.stem)
        return importlib.import_module(spec)
    except UsageError:
        raise
    except Exception as exc:  # an import runs arbitrary generated code
        raise UsageError(f"--proto-module {spec}: {type(exc).__name__}: {exc}") from exc


def default_schemas(
    thrift_files: Iterable[Path] = (), proto_modules: Iterable[str] = ()
) -> Schemas:
    """The demo services (``tether.demo.Echo``, ``Echo``) plus every ``--thrift`` file's
    and every ``--proto-module``'s.

    Raises:
        UsageError: a Thrift file or a protobuf module could not be loaded.
    """
    from ..demo import echo_pb2
    from ..demo._thrift import echo_thrift

    schemas = Schemas()
    schemas.add_proto_file(echo_pb2.DESCRIPTOR)
    schemas.add_thrift_module(echo_thrift)
    for path in thrift_files:
        schemas.add_thrift_file(path)
    for spec in proto_modules:
        schemas.add_proto_module(spec)
    return schemas
