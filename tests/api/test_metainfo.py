"""Kitex-style metainfo over tether's protocol: transient, persistent and backward values."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest

import tether
from tether import metainfo
from tether.testing import client_for


def _recording_service(name: str, seen: list[dict[str, Any]], downstream: Any = None) -> Any:
    svc = tether.Service(name)

    @svc.unary
    async def Call(request: Any, ctx: tether.ServerContext) -> Any:
        seen.append(
            {
                "transient": metainfo.get_all_values(),
                "persistent": metainfo.get_all_persistent_values(),
                "raw": list(ctx.metadata_pairs),
            }
        )
        metainfo.send_backward(f"from_{name}", "yes")
        if downstream is not None:
            metainfo.set_value("hop", name)
            await downstream.unary("second/Call", request)
        return request

    return svc


async def test_transient_and_persistent_values_reach_the_handler() -> None:
    """Values set by the caller arrive in the handler, keys with their case, on the wire as
    RPC_TRANSIT_<key> / RPC_PERSIST_<key>."""
    seen: list[dict[str, Any]] = []
    async with client_for([_recording_service("first", seen)]) as client:
        with metainfo.values({"Trace_Id": "t1"}, persistent={"Tenant": "acme"}):
            assert await client.unary("first/Call", 1) == 1
    assert seen[0]["transient"] == {"Trace_Id": "t1"}
    assert seen[0]["persistent"] == {"Tenant": "acme"}
    assert ("RPC_TRANSIT_Trace_Id", "t1") in seen[0]["raw"]
    assert ("RPC_PERSIST_Tenant", "acme") in seen[0]["raw"]


async def test_transient_values_go_one_hop_persistent_values_go_on() -> None:
    """A handler's outgoing call forwards the persistent values it received but not the
    transient ones; transient values it sets itself do go out."""
    seen_first: list[dict[str, Any]] = []
    seen_second: list[dict[str, Any]] = []
    async with client_for([_recording_service("second", seen_second)]) as downstream:
        first = _recording_service("first", seen_first, downstream)
        async with client_for([first]) as client:
            metainfo.set_value("k1", "v1")
            metainfo.set_persistent_value("pk", "pv")
            await client.unary("first/Call", 7)
    assert seen_first[0]["transient"] == {"k1": "v1"}
    assert seen_second[0]["transient"] == {"hop": "first"}
    assert seen_second[0]["persistent"] == {"pk": "pv"}


async def test_backward_values_return_to_the_caller() -> None:
    """send_backward in the handler reaches the caller's backward_values() dict."""
    seen: list[dict[str, Any]] = []
    async with client_for([_recording_service("first", seen)]) as client:
        with metainfo.backward_values() as received:
            await client.unary("first/Call", 1)
            assert metainfo.recv_backward_value("from_first") == "yes"
        assert received == {"from_first": "yes"}
        assert metainfo.recv_all_backward_values() == {}


async def test_handler_does_not_inherit_the_servers_starting_context() -> None:
    """Values set in the task that started the server are invisible to its handlers."""
    seen: list[dict[str, Any]] = []
    metainfo.set_value("leak", "x")
    async with client_for([_recording_service("first", seen)]) as client:
        metainfo.delete_value("leak")
        await client.unary("first/Call", 1)
    assert seen[0]["transient"] == {}


def test_values_context_restores_previous_values() -> None:
    """values() adds values for its block only; set/delete change the current context."""
    contextvars.copy_context().run(_values_restore)


def _values_restore() -> None:
    metainfo.set_value("a", "1")
    with metainfo.values({"b": "2"}, persistent={"p": "3"}):
        assert metainfo.get_all_values() == {"a": "1", "b": "2"}
        assert metainfo.get_persistent_value("p") == "3"
    assert metainfo.get_all_values() == {"a": "1"}
    assert metainfo.get_persistent_value("p") is None
    metainfo.delete_value("a")
    assert metainfo.get_value("a") is None


def test_send_backward_outside_a_handler_is_refused() -> None:
    """Outside a handler there is no caller to send backward values to."""
    assert metainfo.send_backward("k", "v") is False


@pytest.mark.parametrize(("key", "value"), [("", "v"), ("k", 1)])
def test_bad_keys_and_values_are_rejected(key: str, value: Any) -> None:
    """Empty keys and non-string values are refused with a clear error."""
    with pytest.raises((ValueError, TypeError)):
        contextvars.copy_context().run(metainfo.set_value, key, value)
