"""parse_open decodes the OPEN names of any run of calls right through its per-codec
cache (the last names compared first, then the table), and the table stays bounded."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tether.framing._native_frames import NAMES_CACHE_SIZE, OpenNames, open_head, parse_open

NAMES = [("svc", "A", "raw"), ("svc", "B", "raw"), ("other", "A", "msgpack"), ("", "Ab", "")]


@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=30))
def test_a_run_of_opens_decodes_each_call_s_own_names(run: list[tuple[str, str, str]]) -> None:
    """Repeated, alternating and new names each decode to the call's own triple."""
    names = OpenNames()
    for service, method, encoding in run:
        payload = b"\x00" + open_head(service, method, encoding) + b"\x00\x00"
        decoded, timeout, pos = parse_open(payload, 1, len(payload), 0, names)
        assert decoded == (service, method, encoding)
        assert timeout is None
        assert payload[pos:] == b"\x00\x00"  # the metadata block starts here


def test_the_names_table_is_bounded() -> None:
    """More distinct methods than the cache holds never grow it past its size."""
    names = OpenNames()
    for i in range(NAMES_CACHE_SIZE + 10):
        payload = open_head("svc", f"m{i}", "raw")
        assert parse_open(payload, 0, len(payload), 0, names)[0] == ("svc", f"m{i}", "raw")
        assert len(names.table) <= NAMES_CACHE_SIZE
