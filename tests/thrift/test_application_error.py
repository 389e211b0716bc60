"""ThriftApplicationError: one exception that is both a StatusError and a thriftpy2
TApplicationException, loaded without making ``import tether`` pay for thriftpy2."""

from __future__ import annotations

import pickle
import subprocess
import sys

from thriftpy2.thrift import TApplicationException

import tether


def test_it_is_both_a_status_error_and_a_tapplication_exception() -> None:
    """Either except clause catches it; the type defaults from the status."""
    error = tether.ThriftApplicationError(tether.Status.UNIMPLEMENTED, "no such method")
    assert isinstance(error, tether.StatusError)
    assert isinstance(error, TApplicationException)
    assert (error.type, error.message, str(error)) == (
        1,
        "no such method",
        "UNIMPLEMENTED: no such method",
    )


def test_type_comes_from_the_wire_when_given() -> None:
    """A StatusError carrying ':tapplication-type' keeps the peer's type (Kitex's 20)."""
    source = tether.StatusError(
        tether.Status.UNIMPLEMENTED, "unknown", trailers=((":tapplication-type", "20"),)
    )
    error = tether.ThriftApplicationError.from_status_error(source)
    assert (error.type, error.status) == (20, tether.Status.UNIMPLEMENTED)
    assert tether.ThriftApplicationError.status_of_type(7) is tether.Status.INVALID_ARGUMENT


def test_it_pickles() -> None:
    """Status, message, type and trailers survive pickling."""
    error = tether.ThriftApplicationError(
        tether.Status.INTERNAL, "boom", type=6, trailers=(("k", "v"),)
    )
    back = pickle.loads(pickle.dumps(error))
    assert (back.status, back.message, back.type, back.trailers) == (
        tether.Status.INTERNAL,
        "boom",
        6,
        (("k", "v"),),
    )


def test_import_tether_does_not_import_thriftpy2() -> None:
    """thriftpy2 costs memory; only Thrift users load it (tether.ThriftApplicationError too)."""
    code = (
        "import sys, tether; a = 'thriftpy2' in sys.modules; "
        "tether.ThriftApplicationError; print(a, 'thriftpy2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True"]
