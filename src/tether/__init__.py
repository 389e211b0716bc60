"""tether: a Python RPC framework with a pluggable transport layer."""

from __future__ import annotations

from ._exceptions import BrokenResourceError as BrokenResourceError
from ._exceptions import BusyResourceError as BusyResourceError
from ._exceptions import ClosedResourceError as ClosedResourceError
from ._exceptions import ConfigError as ConfigError
from ._exceptions import ConnectError as ConnectError
from ._exceptions import LocalProtocolError as LocalProtocolError
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import RPCError as RPCError
from ._exceptions import StatusError as StatusError
from ._exceptions import StreamResetError as StreamResetError
from ._exceptions import TransportError as TransportError
from ._metadata import Metadata as Metadata
from ._status import Status as Status
from ._version import __version__ as __version__
