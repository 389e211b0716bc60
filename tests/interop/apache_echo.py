"""echo.thrift for the Apache Thrift Python library, written as its code generator would.

PyPI ``thrift`` has no IDL loader and there is no Thrift compiler on PyPI (Debian's
``thrift-compiler`` would need root and apt at test time), so this file holds what
``thrift --gen py:dynamic echo.thrift`` emits for the demo IDL: ``TBase`` structs described
by ``thrift_spec`` tuples (read and written by Apache's own protocol code, including its
C ``fastbinary`` accelerator), a ``Client`` and a ``Processor``. Only this glue is ours;
transports, protocols and servers are Apache's.
"""

from __future__ import annotations

import time
from typing import Any

from thrift.protocol.TBase import TBase, TExceptionBase
from thrift.Thrift import TApplicationException, TMessageType, TProcessor, TType
from thrift.TRecursive import fix_spec


class EchoRequest(TBase):
    __slots__ = ("data", "delay_ms", "fail", "repeat")

    def __init__(
        self, data: bytes | None = None, repeat: int = 1, delay_ms: int = 0, fail: str = ""
    ) -> None:
        self.data = data
        self.repeat = repeat
        self.delay_ms = delay_ms
        self.fail = fail


class EchoReply(TBase):
    __slots__ = ("data", "metadata")

    def __init__(self, data: bytes | None = None, metadata: dict[str, str] | None = None) -> None:
        self.data = data
        self.metadata = metadata


class EchoError(TExceptionBase):
    __slots__ = ("code", "message")

    def __init__(self, message: str | None = None, code: int | None = None) -> None:
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return repr(self)


class Unary_args(TBase):
    __slots__ = ("req",)

    def __init__(self, req: EchoRequest | None = None) -> None:
        self.req = req


class Unary_result(TBase):
    __slots__ = ("err", "success")

    def __init__(self, success: EchoReply | None = None, err: EchoError | None = None) -> None:
        self.success = success
        self.err = err


class Notify_args(TBase):
    __slots__ = ("req",)

    def __init__(self, req: EchoRequest | None = None) -> None:
        self.req = req


_STRING_MAP = (TType.STRING, "UTF8", TType.STRING, "UTF8", False)
EchoRequest.thrift_spec = (
    None,
    (1, TType.STRING, "data", "BINARY", None),
    (2, TType.I32, "repeat", None, 1),
    (3, TType.I32, "delay_ms", None, 0),
    (4, TType.STRING, "fail", "UTF8", ""),
)
EchoReply.thrift_spec = (
    None,
    (1, TType.STRING, "data", "BINARY", None),
    (2, TType.MAP, "metadata", _STRING_MAP, None),
)
EchoError.thrift_spec = (
    None,
    (1, TType.STRING, "message", "UTF8", None),
    (2, TType.I32, "code", None, None),
)
Unary_args.thrift_spec = (None, (1, TType.STRUCT, "req", [EchoRequest, None], None))
Unary_result.thrift_spec = (
    (0, TType.STRUCT, "success", [EchoReply, None], None),
    (1, TType.STRUCT, "err", [EchoError, None], None),
)
Notify_args.thrift_spec = (None, (1, TType.STRUCT, "req", [EchoRequest, None], None))
fix_spec([EchoRequest, EchoReply, EchoError, Unary_args, Unary_result, Notify_args])


class Client:
    """The generated client: one call at a time over ``iprot``/``oprot``."""

    def __init__(self, iprot: Any, oprot: Any = None) -> None:
        self._iprot = self._oprot = iprot
        if oprot is not None:
            self._oprot = oprot
        self._seqid = 0

    def _send(self, name: str, kind: int, args: TBase) -> None:
        self._seqid += 1
        self._oprot.writeMessageBegin(name, kind, self._seqid)
        args.write(self._oprot)
        self._oprot.writeMessageEnd()
        self._oprot.trans.flush()

    def Unary(self, req: EchoRequest) -> EchoReply:
        self._send("Unary", TMessageType.CALL, Unary_args(req=req))
        iprot = self._iprot
        _, kind, _ = iprot.readMessageBegin()
        if kind == TMessageType.EXCEPTION:
            error = TApplicationException()
            error.read(iprot)
            iprot.readMessageEnd()
            raise error
        result = Unary_result()
        result.read(iprot)
        iprot.readMessageEnd()
        if result.success is not None:
            return result.success
        if result.err is not None:
            raise result.err
        raise TApplicationException(
            TApplicationException.MISSING_RESULT, "Unary failed: unknown result"
        )

    def Notify(self, req: EchoRequest) -> None:
        self._send("Notify", TMessageType.ONEWAY, Notify_args(req=req))


class Handler:
    """echo.thrift's semantics (as the tether demo implements them)."""

    def __init__(self) -> None:
        self.notified: bytes | None = None

    def Unary(self, req: EchoRequest) -> EchoReply:
        if req.delay_ms and req.delay_ms > 0:
            time.sleep(req.delay_ms / 1000)
        if req.fail:
            raise EchoError(message=req.fail, code=3)
        metadata: dict[str, str] = {}
        if self.notified is not None:
            metadata["notified"] = self.notified.decode("utf-8", "replace")
            self.notified = None
        return EchoReply(data=(req.data or b"") * max(req.repeat or 0, 0), metadata=metadata)

    def Notify(self, req: EchoRequest) -> None:
        self.notified = req.data or b""


class Processor(TProcessor):
    """The generated processor: reads one message, runs the handler, writes the reply."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def process(self, iprot: Any, oprot: Any) -> bool:
        name, _, seqid = iprot.readMessageBegin()
        if name == "Notify":
            args = Notify_args()
            args.read(iprot)
            iprot.readMessageEnd()
            self._handler.Notify(args.req)
            return True
        if name != "Unary":
            iprot.skip(TType.STRUCT)
            iprot.readMessageEnd()
            error = TApplicationException(
                TApplicationException.UNKNOWN_METHOD, f"Unknown function {name}"
            )
            oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seqid)
            error.write(oprot)
            oprot.writeMessageEnd()
            oprot.trans.flush()
            return True
        args = Unary_args()
        args.read(iprot)
        iprot.readMessageEnd()
        result = Unary_result()
        try:
            result.success = self._handler.Unary(args.req)
        except EchoError as exc:
            result.err = exc
        oprot.writeMessageBegin("Unary", TMessageType.REPLY, seqid)
        result.write(oprot)
        oprot.writeMessageEnd()
        oprot.trans.flush()
        return True
