"""tether: a Python RPC framework with a pluggable transport layer.

Importing ``tether`` registers the built-in transports (tcp, unix, tls, tls+unix, memory,
...) and framings (tether's native protocol, ...). Everything public is re-exported here;
plugin interfaces live in :mod:`tether.transport`, :mod:`tether.framing`,
:mod:`tether.encoding` and :mod:`tether.buffer`; test helpers in :mod:`tether.testing`.
"""

from __future__ import annotations

from . import encoding as encoding
from . import framing as framing
from . import transport as transport
from ._calls import Call as Call
from ._client import Client as Client
from ._client import Stub as Stub
from ._config import ConnectOptions as ConnectOptions
from ._config import ListenOptions as ListenOptions
from ._config import TLSConfig as TLSConfig
from ._context import ServerContext as ServerContext
from ._context import current_context as current_context
from ._dispatch import ConnectionState as ConnectionState
from ._exceptions import BrokenResourceError as BrokenResourceError
from ._exceptions import BusyResourceError as BusyResourceError
from ._exceptions import ClosedResourceError as ClosedResourceError
from ._exceptions import ConfigError as ConfigError
from ._exceptions import ConnectError as ConnectError
from ._exceptions import ErrorCode as ErrorCode
from ._exceptions import LocalProtocolError as LocalProtocolError
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import RPCError as RPCError
from ._exceptions import StatusError as StatusError
from ._exceptions import StreamResetError as StreamResetError
from ._exceptions import TransportError as TransportError
from ._metadata import Metadata as Metadata
from ._run import new_event_loop as new_event_loop
from ._run import run as run
from ._server import Server as Server
from ._service import Cardinality as Cardinality
from ._service import MethodSpec as MethodSpec
from ._service import Service as Service
from ._status import Status as Status
from ._version import __version__ as __version__
from .framing import CodecConfig as CodecConfig

__all__ = [
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
    "TransportError",
    "__version__",
    "current_context",
    "encoding",
    "framing",
    "new_event_loop",
    "run",
    "transport",
]
