"""Thrift over every Kitex-family protocol: one server port, a stub, metainfo, a biz error.

Run it: ``python docs/examples/thrift_kitex.py`` (tests/thrift/test_docs_example.py does).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from typing import Any

import tether
from tether import metainfo
from tether.thrift import ThriftStub, load, thrift_service

with as_file(files("tether.demo").joinpath("echo.thrift")) as idl:
    echo: Any = load(idl)


class EchoHandler:
    """``Echo`` from echo.thrift: one coroutine per IDL method, arguments by name."""

    async def Unary(self, req: Any) -> Any:
        if req.fail:
            raise tether.BizStatusError(1001, req.fail, {"why": "asked to"})
        metainfo.send_backward("served_by", "tether")
        trace = metainfo.get_value("trace") or "-"
        return echo.EchoReply(data=req.data * req.repeat, metadata={"trace": trace})

    async def Notify(self, req: Any) -> None:
        pass


async def main() -> None:
    server = tether.Server([thrift_service(echo.Echo, EchoHandler())])
    await server.start("tcp://127.0.0.1:0")  # every protocol on this one port
    url = server.addresses[0]
    for protocol in ("buffered", "framed", "ttheader", "ttheader_framed", "theader"):
        async with tether.Client(url, protocol=protocol) as client:
            stub = ThriftStub(client, echo.Echo)
            with metainfo.values({"trace": "t-1"}), metainfo.backward_values() as back:
                reply = await stub.Unary(echo.EchoRequest(data=b"hi", repeat=2), timeout=1.0)
            print(protocol, reply.data.decode(), reply.metadata["trace"], back)
    async with tether.Client(url, protocol="ttheader") as client:
        try:
            await ThriftStub(client, echo.Echo).Unary(echo.EchoRequest(fail="out of stock"))
        except tether.BizStatusError as exc:
            print("biz error", exc.code, exc.message, exc.extra)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    tether.run(main())
