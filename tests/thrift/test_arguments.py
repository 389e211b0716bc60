"""How ThriftStub and thrift_service pass IDL arguments: positional stub arguments map in
field-id order, keywords by name, and handlers get every argument by name, whatever order
the IDL declares them in."""

from __future__ import annotations

import io
from typing import Any

import pytest
import thriftpy2

import tether
from tether.thrift import ThriftStub, thrift_service

# ``mix`` declares its arguments out of field-id order; ``pair`` in order.
IDL = """
service Args {
    string mix(2: binary data, 1: i32 times, 3: string tag = "t")
    string pair(1: string left, 2: string right)
}
"""


@pytest.fixture(scope="module")
def module() -> Any:
    return thriftpy2.load_fp(io.StringIO(IDL), module_name="arguments_thrift")


class Args:
    async def mix(self, tag: str, times: int, data: bytes) -> str:
        return f"{tag}:{times}:{data.decode()}"

    async def pair(self, right: str, left: str) -> str:
        return f"{left}<{right}"


@pytest.mark.parametrize("protocol", ["framed", "ttheader", "tether"])
async def test_arguments_reach_the_handler_by_name(module: Any, protocol: str) -> None:
    """Positional stub arguments follow field ids (1, 2, 3), keywords go by name, omitted
    ones take their IDL default, and the handler receives each under its own name."""
    async with tether.Server([thrift_service(module.Args, Args())]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], protocol=protocol) as client:
            stub = ThriftStub(client, module.Args)
            assert await stub.mix(3, b"x") == "t:3:x"
            assert await stub.mix(2, b"y", "z") == "z:2:y"
            assert await stub.mix(data=b"w", times=1) == "t:1:w"
            assert await stub.pair("a", "b") == "a<b"
            assert await stub.pair("a", right="c") == "a<c"
            with pytest.raises(TypeError):
                await stub.pair("a", "b", "c")
            with pytest.raises(TypeError):
                await stub.pair(middle="m")


SINGLE_IDL = """
service Single {
    binary echo(1: binary data)
}
"""


class _Positional:
    async def echo(self, data: bytes) -> bytes:
        return b"p:" + data


class _KeywordOnly:
    async def echo(self, *, data: bytes) -> bytes:
        return b"k:" + data


class _OtherName:
    async def echo(self, extra: bytes = b"", **kwargs: bytes) -> bytes:
        return b"o:" + kwargs["data"] + extra


@pytest.mark.parametrize(
    ("impl", "direct"), [(_Positional(), True), (_KeywordOnly(), False), (_OtherName(), False)]
)
async def test_one_argument_handlers_get_it_by_name_either_way(impl: Any, direct: bool) -> None:
    """A one-argument method whose implementation takes the argument first, positionally,
    is served by the implementation itself with the decoded value; keyword-only or
    differently named parameters still get it by name."""
    module: Any = thriftpy2.load_fp(io.StringIO(SINGLE_IDL), module_name="single_arg_thrift")
    service = thrift_service(module.Single, impl)
    assert (service.methods["echo"].handler == impl.echo) is direct
    async with tether.Server([service]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], protocol="framed") as client:
            stub = ThriftStub(client, module.Single)
            prefix = {_Positional: b"p:", _KeywordOnly: b"k:", _OtherName: b"o:"}[type(impl)]
            assert await stub.echo(b"x") == prefix + b"x"
