"""tether client ↔ tether server over every Thrift-family protocol: multiplexing, pools,
metainfo, biz errors, application errors, deadlines and method resolution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tether
from tether import metainfo
from tether.demo._thrift import echo_thrift
from tether.thrift import (
    HeaderFields,
    MetaHandler,
    RequestMeta,
    ThriftStub,
    register_meta_handler,
    thrift_service,
    unregister_meta_handler,
)

MUX = ["framed", "ttheader", "ttheader_framed", "theader"]
HEADERS = ["ttheader", "ttheader_framed", "theader"]
ALL = ["buffered", *MUX]
Request = echo_thrift.EchoRequest


class Handler:
    """echo.thrift's Echo with hooks: ordered release, metainfo and error triggers."""

    def __init__(self) -> None:
        self.gates: dict[bytes, asyncio.Event] = {}
        self.arrived: list[bytes] = []
        self.all_arrived = asyncio.Event()
        self.expected = 0
        self.seen: list[dict[str, Any]] = []
        self.downstream: Any = None

    async def Unary(self, req: Any) -> Any:
        ctx = tether.current_context()
        self.seen.append(
            {
                "transient": metainfo.get_all_values(),
                "persistent": metainfo.get_all_persistent_values(),
                "deadline": ctx.deadline,
                "pairs": ctx.metadata_pairs,
                "service": ctx.service,
            }
        )
        metainfo.send_backward("srv_backward", "from-tether")
        if req.fail == "biz":
            raise tether.BizStatusError(1001, "biz failure", {"k": "v"})
        if req.fail == "crash":
            raise RuntimeError("handler error")
        if req.fail:
            raise echo_thrift.EchoError(message=req.fail, code=3)
        if self.downstream is not None:
            metainfo.set_value("hop", "middle")
            await self.downstream.Unary(Request(data=b"down"))
        gate = self.gates.get(req.data)
        if gate is not None:
            self.arrived.append(req.data)
            if len(self.arrived) == self.expected:
                self.all_arrived.set()
            await gate.wait()
        return echo_thrift.EchoReply(data=req.data, metadata={})

    async def Notify(self, req: Any) -> None:
        pass


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, tether.Server, Handler]]:
    handler = Handler()
    server = tether.Server([thrift_service(echo_thrift.Echo, handler)])
    await server.start("tcp://127.0.0.1:0")
    try:
        yield server.addresses[0], server, handler
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("protocol", MUX)
async def test_concurrent_calls_share_one_connection_and_complete_out_of_order(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """20 calls go out on one connection; replies released in reverse order each reach
    their own caller (seq-id correlation)."""
    url, server, handler = served
    keys = [str(i).encode() for i in range(20)]
    handler.gates = {k: asyncio.Event() for k in keys}
    handler.expected = len(keys)
    finished: list[bytes] = []
    async with tether.Client(url, protocol=protocol) as client:
        stub = ThriftStub(client, echo_thrift.Echo)

        async def call(key: bytes) -> None:
            reply = await stub.Unary(Request(data=key))
            assert reply.data == key
            finished.append(key)

        tasks = [asyncio.create_task(call(k)) for k in keys]
        await handler.all_arrived.wait()
        assert server.connection_count == 1
        for key in reversed(keys):
            handler.gates[key].set()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
    assert sorted(finished) == sorted(keys)
    assert finished != keys  # replies did not come back in request order


@pytest.mark.parametrize(("protocol", "mux"), [("buffered", None), ("framed", False)])
async def test_one_call_per_connection_uses_a_pool(
    served: tuple[str, tether.Server, Handler], protocol: str, mux: bool | None
) -> None:
    """Buffered (and mux=False) run one call per connection, pool_size connections."""
    url, server, handler = served
    keys = [str(i).encode() for i in range(3)]
    handler.gates = {k: asyncio.Event() for k in keys}
    handler.expected = 3
    async with tether.Client(url, protocol=protocol, mux=mux, pool_size=3) as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        tasks = [asyncio.create_task(stub.Unary(Request(data=k))) for k in keys]
        await handler.all_arrived.wait()
        assert server.connection_count == 3
        for gate in handler.gates.values():
            gate.set()
        assert [r.data for r in await asyncio.gather(*tasks)] == keys


def test_mux_cannot_be_forced_on_buffered() -> None:
    """Buffered has no seq-id correlation on the wire that a server honours out of order."""
    with pytest.raises(tether.ConfigError, match="cannot multiplex"):
        tether.Client("tcp://127.0.0.1:1", protocol="buffered", mux=True)


@pytest.mark.parametrize("protocol", HEADERS)
async def test_metainfo_travels_kitex_style(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """Transient values go one hop, persistent ones on through a middle server, backward
    values come back; keys keep their case on the wire."""
    url, _, last = served
    middle = Handler()
    middle_server = tether.Server([thrift_service(echo_thrift.Echo, middle)])
    await middle_server.start("tcp://127.0.0.1:0")
    try:
        async with (
            tether.Client(url, protocol=protocol) as to_last,
            tether.Client(middle_server.addresses[0], protocol=protocol) as to_middle,
        ):
            middle.downstream = ThriftStub(to_last, echo_thrift.Echo)
            with (
                metainfo.values({"Trace_ID": "t1"}, persistent={"Tenant": "acme"}),
                metainfo.backward_values() as backward,
            ):
                await ThriftStub(to_middle, echo_thrift.Echo).Unary(Request(data=b"x"))
    finally:
        middle_server.close()
        await middle_server.wait_closed()
    assert middle.seen[0]["transient"] == {"Trace_ID": "t1"}
    assert middle.seen[0]["persistent"] == {"Tenant": "acme"}
    assert ("RPC_TRANSIT_Trace_ID", "t1") in middle.seen[0]["pairs"]
    assert last.seen[0]["transient"] == {"hop": "middle"}
    assert last.seen[0]["persistent"] == {"Tenant": "acme"}
    assert backward == {"srv_backward": "from-tether"}


@pytest.mark.parametrize("protocol", HEADERS)
async def test_biz_error_is_a_reply_with_headers(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """A BizStatusError travels as biz-* reply headers and raises typed on the client."""
    url, _, _ = served
    async with tether.Client(url, protocol=protocol) as client:
        with pytest.raises(tether.BizStatusError) as info:
            await ThriftStub(client, echo_thrift.Echo).Unary(Request(fail="biz"))
    assert (info.value.code, info.value.message, info.value.extra) == (
        1001,
        "biz failure",
        {"k": "v"},
    )


@pytest.mark.parametrize("protocol", ALL)
async def test_declared_exception_handler_error_and_unknown_method(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """EchoError comes back as itself; a crash is TApplicationException 6 "biz error: ..."
    (Kitex's text); a method the server lacks is type 20, status UNIMPLEMENTED."""
    url, _, _ = served
    async with tether.Client(url, protocol=protocol) as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        with pytest.raises(echo_thrift.EchoError):
            await stub.Unary(Request(fail="declared"))
        with pytest.raises(tether.ThriftApplicationError) as crash:
            await stub.Unary(Request(fail="crash"))
        assert (crash.value.type, crash.value.message) == (6, "biz error: handler error")
        assert crash.value.status is tether.Status.INTERNAL
        with pytest.raises(tether.StatusError) as unknown:
            await client.unary("Echo/Missing", b"\x00", request_type=bytes, response_type=bytes)
        assert unknown.value.status is tether.Status.UNIMPLEMENTED
        assert dict(unknown.value.trailers)[":tapplication-type"] == "20"
        assert (await stub.Unary(Request(data=b"still fine"))).data == b"still fine"


@pytest.mark.parametrize("protocol", ["ttheader", "ttheader_framed"])
async def test_deadline_reaches_the_server(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """The call's timeout travels (TTHeader RPCTimeout) and sets the handler's deadline."""
    url, _, handler = served
    async with tether.Client(url, protocol=protocol) as client:
        await ThriftStub(client, echo_thrift.Echo).Unary(Request(data=b"t"), timeout=30)
    assert handler.seen[0]["deadline"] is not None


async def test_service_named_without_namespace_or_case_is_found(
    served: tuple[str, tether.Server, Handler],
) -> None:
    """An isn of ``ns.ECHO`` finds service ``Echo`` (Kitex sends the bare IDL name)."""
    url, _, handler = served
    async with tether.Client(url, protocol="ttheader") as client:
        stub = ThriftStub(client, echo_thrift.Echo, name="ns.ECHO")
        assert (await stub.Unary(Request(data=b"n"))).data == b"n"
    assert handler.seen[0]["service"] == "Echo"


async def test_method_served_by_two_services_is_ambiguous_without_a_name() -> None:
    """Framed names no service: a method two services share is UNIMPLEMENTED, a method
    only one has is routed to it."""
    first, second = Handler(), Handler()
    server = tether.Server(
        [
            thrift_service(echo_thrift.Echo, first, name="One"),
            thrift_service(echo_thrift.Echo, second, name="Two"),
        ]
    )
    await server.start("tcp://127.0.0.1:0")
    try:
        async with tether.Client(server.addresses[0], protocol="framed") as client:
            with pytest.raises(tether.ThriftApplicationError) as info:
                await ThriftStub(client, echo_thrift.Echo).Unary(Request(data=b"a"))
            assert info.value.status is tether.Status.UNIMPLEMENTED
        async with tether.Client(server.addresses[0], protocol="ttheader") as client:
            await ThriftStub(client, echo_thrift.Echo, name="Two").Unary(Request(data=b"b"))
        assert (len(first.seen), len(second.seen)) == (0, 1)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_loosely_resolved_method_is_resolved_alike_when_repeated() -> None:
    """Framed calls name no service: repeated calls reach the one service that has the
    method (the server remembers the resolution), and a method no service has stays
    UNIMPLEMENTED however often it follows a served one."""
    served = Handler()
    server = tether.Server([thrift_service(echo_thrift.Echo, served, name="Served")])
    await server.start("tcp://127.0.0.1:0")
    try:
        async with tether.Client(server.addresses[0], protocol="framed") as client:
            stub = ThriftStub(client, echo_thrift.Echo)
            for i in range(3):
                assert (await stub.Unary(Request(data=b"%d" % i))).data == b"%d" % i
                with pytest.raises(tether.StatusError) as info:
                    await client.unary(
                        "Served/Missing", b"\x00", request_type=bytes, response_type=bytes
                    )
                assert info.value.status is tether.Status.UNIMPLEMENTED
        assert [seen["service"] for seen in served.seen] == ["Served"] * 3
    finally:
        server.close()
        await server.wait_closed()


class _TenantHandler(MetaHandler):
    """Client: adds int key 4 (FromCluster) and a str key; server: reads them back."""

    def write_request(self, request: RequestMeta, header: HeaderFields) -> None:
        header.int_info[4] = "cluster-a"
        header.str_info["tenant"] = "acme"


async def test_registered_meta_handler_writes_request_headers(
    served: tuple[str, tether.Server, Handler],
) -> None:
    """A user MetaHandler runs in every new codec after the built-in one."""
    url, _, handler = served
    custom = _TenantHandler()
    register_meta_handler(custom)
    try:
        async with tether.Client(url, protocol="ttheader") as client:
            await ThriftStub(client, echo_thrift.Echo).Unary(Request(data=b"m"))
    finally:
        unregister_meta_handler(custom)
    pairs = handler.seen[0]["pairs"]
    assert ("tenant", "acme") in pairs
    assert (":int-4", "cluster-a") in pairs


@pytest.mark.parametrize("protocol", ["buffered", "framed"])
async def test_biz_error_without_headers_is_a_missing_result(
    served: tuple[str, tether.Server, Handler], protocol: str
) -> None:
    """Buffered/Framed cannot carry biz-* headers: the caller sees Kitex's empty REPLY as
    TApplicationException MISSING_RESULT (5), never as a success."""
    url, _, _ = served
    async with tether.Client(url, protocol=protocol) as client:
        with pytest.raises(tether.ThriftApplicationError) as info:
            await ThriftStub(client, echo_thrift.Echo).Unary(Request(fail="biz"))
    assert info.value.type == 5


async def test_stub_checks_arguments_before_sending(
    served: tuple[str, tether.Server, Handler],
) -> None:
    """Unknown keyword or extra positional arguments are a TypeError; nothing is sent."""
    url, _, handler = served
    async with tether.Client(url, protocol="framed") as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        with pytest.raises(TypeError, match="unexpected arguments"):
            await stub.Unary(req=Request(), bogus=1)
        with pytest.raises(TypeError, match="takes 1 arguments"):
            await stub.Unary(Request(), Request())
        assert stub.Unary is stub.Unary  # built once, then cached on the stub
        assert (await stub.Unary(req=Request(data=b"k"))).data == b"k"
    assert len(handler.seen) == 1
