"""BizStatusError: a handler's business error reaches the caller typed, over tether's protocol."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import tether
from tether.testing import client_for


def _service() -> tether.Service:
    svc = tether.Service("biz.Svc")

    @svc.unary
    async def Fail(request: Any) -> Any:
        raise tether.BizStatusError(1001, "biz failure", {"k": "v"})

    return svc


async def test_biz_error_reaches_the_client_typed() -> None:
    """Code, message and extra survive the trip; it is also a StatusError (INTERNAL)."""
    async with client_for([_service()]) as client:
        with pytest.raises(tether.BizStatusError) as info:
            await client.unary("biz.Svc/Fail", {})
    error = info.value
    assert (error.code, error.message, error.extra) == (1001, "biz failure", {"k": "v"})
    assert isinstance(error, tether.StatusError)
    assert error.status is tether.Status.INTERNAL
    assert ("biz-status", "1001") in error.trailers


def test_biz_error_wire_pairs_round_trip() -> None:
    """to_pairs/from_pairs are inverse; no or zero biz-status means no error."""
    error = tether.BizStatusError(-7, "neg", {"a": "b"})
    back = tether.BizStatusError.from_pairs(error.to_pairs())
    assert back is not None
    assert (back.code, back.message, back.extra) == (-7, "neg", {"a": "b"})
    assert tether.BizStatusError.from_pairs((("biz-status", "0"),)) is None
    assert tether.BizStatusError.from_pairs((("other", "1"),)) is None


def test_malformed_biz_pairs_still_report_a_failure() -> None:
    """A garbled biz-status or biz-extra still raises (code 1, no extra), never passes."""
    error = tether.BizStatusError.from_pairs((("biz-status", "x"), ("biz-extra", "[1")))
    assert error is not None
    assert (error.code, error.extra) == (1, {})


def test_biz_error_pickles() -> None:
    """The error survives pickling (multiprocessing, logging handlers)."""
    error = pickle.loads(pickle.dumps(tether.BizStatusError(5, "m", {"x": "y"})))
    assert (error.code, error.message, error.extra) == (5, "m", {"x": "y"})


def test_zero_code_is_not_an_error() -> None:
    """Kitex treats biz-status 0 as success, so it cannot be raised."""
    with pytest.raises(ValueError, match="non-zero"):
        tether.BizStatusError(0, "ok")
