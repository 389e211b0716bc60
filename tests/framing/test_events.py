"""The event classes: frozen, slotted, keyword-only dataclasses whose hand-written
``__init__`` (the per-call events) is the one ``dataclasses`` would generate, and which
pickle and copy in the compiled build as in pure Python."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import pickle
import subprocess
import sys
from typing import Any

import pytest

import tether
from tether import ErrorCode, Status
from tether.framing import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    GoAway,
    Headers,
    Message,
    Ping,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from tether.framing._events import Event

#: One event of every class, every field away from its default.
SAMPLES: list[Event] = [
    CallStarted(
        stream_id=7,
        service="svc",
        method="M",
        metadata=(("k", "v"), ("b-bin", b"\x00")),
        timeout=1.5,
        encoding="proto",
        end_stream=True,
        oneway=True,
    ),
    Headers(stream_id=2, metadata=(("h", "1"),)),
    Message(stream_id=3, data=b"payload", end_stream=True),
    EndOfStream(stream_id=5),
    Trailers(stream_id=3, status=Status.NOT_FOUND, message="gone", metadata=(("t", "x"),)),
    StreamReset(stream_id=9, status=Status.UNAVAILABLE, message="bye", error_code=7),
    Ping(payload=b"12345678", ack=True),
    GoAway(last_stream_id=11, error_code=ErrorCode.PROTOCOL_ERROR, reason="bad"),
    WindowUpdated(stream_id=1),
    SettingsChanged(max_concurrent_streams=10),
    ConnectionClosed(),
]
#: The classes whose ``__init__`` is written out in _events.py.
HAND_WRITTEN = [CallStarted, Message, EndOfStream, Trailers, StreamReset]


@pytest.mark.parametrize("cls", HAND_WRITTEN, ids=lambda cls: cls.__name__)
def test_hand_written_init_matches_the_fields(cls: type[Any]) -> None:
    """The written-out __init__ takes exactly the fields as keywords, with the fields'
    defaults, and sets every slot to the argument given (checked by behaviour: a compiled
    __init__ has no inspectable signature)."""
    fields = dataclasses.fields(cls)
    sample = next(event for event in SAMPLES if type(event) is cls)
    values = {f.name: getattr(sample, f.name) for f in fields}
    built = cls(**values)
    assert built == sample
    assert dataclasses.asdict(built) == values
    required = {f.name: values[f.name] for f in fields if f.default is dataclasses.MISSING}
    minimal = cls(**required)
    for f in fields:
        expected = values[f.name] if f.name in required else f.default
        assert getattr(minimal, f.name) == expected
    for name in required:
        with pytest.raises(TypeError):
            cls(**{k: v for k, v in required.items() if k != name})
    with pytest.raises(TypeError):
        cls(**required, unknown=1)
    with pytest.raises(TypeError):
        cls(*required.values())


def test_hand_written_signatures_match_in_pure_python() -> None:
    """Where the signature is inspectable (pure Python), it is the generated one's:
    keyword-only, the fields in order, their defaults."""
    if tether.__compiled__:
        pytest.skip("compiled __init__s have no signature; the pure-Python run checks it")
    for cls in HAND_WRITTEN:
        params = list(inspect.signature(cls).parameters.values())
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
        assert [p.default for p in params] == [
            inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            for f in fields
        ]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: type(event).__name__)
def test_events_are_frozen_hashable_values(event: Event) -> None:
    """Every event compares and hashes by value, refuses assignment, has no __dict__, and
    survives pickle, copy, deepcopy and dataclasses.replace."""
    twin = copy.copy(event)
    assert twin == event
    assert twin is not event
    assert hash(twin) == hash(event)
    assert copy.deepcopy(event) == event
    assert pickle.loads(pickle.dumps(event)) == event
    assert dataclasses.replace(event) == event
    assert not hasattr(event, "__dict__")
    for field in dataclasses.fields(event):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field.name, None)
    assert repr(event).startswith(type(event).__name__ + "(")


def test_this_module_passes_in_the_pure_python_build_too() -> None:
    """The same tests pass with TETHER_PURE_PYTHON=1 (the suite itself runs on whichever
    build is installed): construction, pickling and signatures agree in both builds."""
    if not tether.__compiled__:
        pytest.skip("this run is the pure-Python build already")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env={**os.environ, "TETHER_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
