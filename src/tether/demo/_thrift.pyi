# Types for the module thriftpy2 builds from echo.thrift at import time.
#
# At run time ``echo_thrift`` is that module; declaring it as a class namespace here lets
# ``echo_thrift.EchoRequest`` be used in annotations. Every struct field is optional
# (``None`` means unset). tests/demo/test_schemas.py checks this file against the IDL.

from typing import ClassVar

from thriftpy2.thrift import TException, TPayload

MODULE_NAME: str

class echo_thrift:
    class EchoRequest(TPayload):
        data: bytes | None
        repeat: int | None
        delay_ms: int | None
        fail: str | None
        def __init__(
            self,
            data: bytes | None = None,
            repeat: int | None = 1,
            delay_ms: int | None = 0,
            fail: str | None = "",
        ) -> None: ...

    class EchoReply(TPayload):
        data: bytes | None
        metadata: dict[str, str] | None
        def __init__(
            self, data: bytes | None = None, metadata: dict[str, str] | None = None
        ) -> None: ...

    class EchoError(TException):
        message: str | None
        code: int | None
        def __init__(self, message: str | None = None, code: int | None = None) -> None: ...

    class Echo:
        thrift_services: ClassVar[list[str]]

        class Unary_args(TPayload):
            req: echo_thrift.EchoRequest | None
            def __init__(self, req: echo_thrift.EchoRequest | None = None) -> None: ...

        class Unary_result(TPayload):
            success: echo_thrift.EchoReply | None
            err: echo_thrift.EchoError | None
            oneway: ClassVar[bool]
            def __init__(
                self,
                success: echo_thrift.EchoReply | None = None,
                err: echo_thrift.EchoError | None = None,
            ) -> None: ...

        class Notify_args(TPayload):
            req: echo_thrift.EchoRequest | None
            def __init__(self, req: echo_thrift.EchoRequest | None = None) -> None: ...

        class Notify_result(TPayload):
            oneway: ClassVar[bool]
            def __init__(self) -> None: ...
