"""The native send path's OPEN head caches (the last call's encoded names, then a
bounded table) never send one call's names for another's."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tests.framing.native_helpers import native_pair
from tether.framing import CallStarted, Role

C, S = Role.CLIENT, Role.SERVER
_name = st.sampled_from(["", "svc", "Svc", "svc2", "é"])


@given(calls=st.lists(st.tuples(_name, _name, st.sampled_from(["", "raw", "proto"])), max_size=12))
def test_any_sequence_of_names_arrives_as_sent(calls: list[tuple[str, str, str]]) -> None:
    """Calls repeating, alternating or changing service/method/encoding (empty ones
    included) each arrive with exactly the names they were opened with."""
    pair = native_pair()
    for i, (service, method, encoding) in enumerate(calls):
        event = CallStarted(stream_id=2 * i + 1, service=service, method=method, encoding=encoding)
        assert pair.send(C, event) == [event]
