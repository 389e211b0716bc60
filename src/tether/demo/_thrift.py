"""The Thrift demo schema: ``echo.thrift``, loaded by thriftpy2 at import."""

from __future__ import annotations

from importlib.resources import as_file, files
from types import ModuleType

import thriftpy2

#: thriftpy2 requires the ``_thrift`` suffix; ``thriftpy2.load`` also registers the module
#: in ``sys.modules`` under this name, which is what makes its structs picklable.
MODULE_NAME = "echo_thrift"

with as_file(files(__package__).joinpath("echo.thrift")) as _path:
    #: The parsed IDL: ``EchoRequest``, ``EchoReply``, ``EchoError`` and the ``Echo``
    #: service (with its ``Unary_args`` / ``Unary_result`` / ``Notify_args`` structs).
    echo_thrift: ModuleType = thriftpy2.load(str(_path), module_name=MODULE_NAME)
