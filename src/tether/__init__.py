"""tether: a Python RPC framework with a pluggable transport layer.

The built-in transports (tcp, unix, tls, tls+unix, memory, ...) and framings (tether's
native protocol, ...) are registered when :mod:`tether.transport` and
:mod:`tether.framing` are first imported, which any use of a client or server does.
Everything public is re-exported here and imported on first use (``import tether`` itself
loads almost nothing); plugin interfaces live in :mod:`tether.transport`,
:mod:`tether.framing`, :mod:`tether.encoding` and :mod:`tether.buffer`; test helpers in
:mod:`tether.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# First, before any compiled module loads: picks compiled or pure Python (docs/compiled.md).
from ._compiled import is_compiled as _is_compiled
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from . import (
        buffer as buffer,
        encoding as encoding,
        framing as framing,
        metainfo as metainfo,
        transport as transport,
    )
    from ._calls import Call as Call
    from ._client import Client as Client
    from ._config import (
        ConnectOptions as ConnectOptions,
        KeepaliveConfig as KeepaliveConfig,
        ListenOptions as ListenOptions,
        TLSConfig as TLSConfig,
    )
    from ._context import ServerContext as ServerContext, current_context as current_context
    from ._dispatch import ConnectionState as ConnectionState
    from ._exceptions import (
        BizStatusError as BizStatusError,
        BrokenResourceError as BrokenResourceError,
        BusyResourceError as BusyResourceError,
        ClosedResourceError as ClosedResourceError,
        ConfigError as ConfigError,
        ConnectError as ConnectError,
        ErrorCode as ErrorCode,
        LocalProtocolError as LocalProtocolError,
        ProtocolError as ProtocolError,
        RemoteProtocolError as RemoteProtocolError,
        RPCError as RPCError,
        StatusError as StatusError,
        StreamResetError as StreamResetError,
        TransportError as TransportError,
    )
    from ._metadata import Metadata as Metadata
    from ._run import new_event_loop as new_event_loop, run as run
    from ._server import Server as Server
    from ._service import Cardinality as Cardinality, MethodSpec as MethodSpec, Service as Service
    from ._status import Status as Status
    from ._stub import Stub as Stub
    from .framing import CodecConfig as CodecConfig
    from .thrift import ThriftApplicationError as ThriftApplicationError

#: Public name -> the module that defines it. Nothing is imported until a name is first
#: used: a process that only serves tether's native protocol over TCP never loads the
#: client, the payload codecs it does not use or the other protocols (their memory is
#: part of the server's RSS budget).
_LAZY = {
    "Call": "._calls",
    "Cardinality": "._service",
    "Client": "._client",
    "CodecConfig": ".framing",
    "ConnectOptions": "._config",
    "ConnectionState": "._dispatch",
    "KeepaliveConfig": "._config",
    "ListenOptions": "._config",
    "Metadata": "._metadata",
    "MethodSpec": "._service",
    "Server": "._server",
    "ServerContext": "._context",
    "Service": "._service",
    "Status": "._status",
    "Stub": "._stub",
    "TLSConfig": "._config",
    "ThriftApplicationError": ".thrift",
    "current_context": "._context",
    "new_event_loop": "._run",
    "run": "._run",
    **dict.fromkeys(
        (
            "BizStatusError",
            "BrokenResourceError",
            "BusyResourceError",
            "ClosedResourceError",
            "ConfigError",
            "ConnectError",
            "ErrorCode",
            "LocalProtocolError",
            "ProtocolError",
            "RPCError",
            "RemoteProtocolError",
            "StatusError",
            "StreamResetError",
            "TransportError",
        ),
        "._exceptions",
    ),
}
_SUBPACKAGES = frozenset({"buffer", "encoding", "framing", "metainfo", "transport"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBPACKAGES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


#: ``True`` when the mypyc-compiled hot modules are (or, once used, will be) the ones
#: loaded; ``False``: pure Python.
__compiled__ = _is_compiled()

__all__ = [
    "BizStatusError",
    "BrokenResourceError",
    "BusyResourceError",
    "Call",
    "Cardinality",
    "Client",
    "ClosedResourceError",
    "CodecConfig",
    "ConfigError",
    "ConnectError",
    "ConnectOptions",
    "ConnectionState",
    "ErrorCode",
    "KeepaliveConfig",
    "ListenOptions",
    "LocalProtocolError",
    "Metadata",
    "MethodSpec",
    "ProtocolError",
    "RPCError",
    "RemoteProtocolError",
    "Server",
    "ServerContext",
    "Service",
    "Status",
    "StatusError",
    "StreamResetError",
    "Stub",
    "TLSConfig",
    "ThriftApplicationError",
    "TransportError",
    "__version__",
    "current_context",
    "encoding",
    "framing",
    "metainfo",
    "new_event_loop",
    "run",
    "transport",
]
