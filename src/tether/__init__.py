"""tether: a Python RPC framework with a pluggable transport layer.

Importing ``tether`` registers the built-in transports (tcp, unix, tls, tls+unix, memory,
...) and framings (tether's native protocol, ...). Everything public is re-exported here;
plugin interfaces live in :mod:`tether.transport`, :mod:`tether.framing`,
:mod:`tether.encoding` and :mod:`tether.buffer`; test helpers in :mod:`tether.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# First, before any compiled module loads: picks compiled or pure Python (docs/compiled.md).
from ._compiled import is_compiled as _is_compiled

# isort: split
from . import (
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
from ._version import __version__ as __version__
from .framing import CodecConfig as CodecConfig

if TYPE_CHECKING:
    from .thrift import ThriftApplicationError as ThriftApplicationError


def __getattr__(name: str) -> Any:
    # thriftpy2 (behind ThriftApplicationError) is imported on first use only.
    if name == "ThriftApplicationError":
        from .thrift import ThriftApplicationError

        return ThriftApplicationError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``True`` when the mypyc-compiled hot modules are loaded (``False``: pure Python).
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
