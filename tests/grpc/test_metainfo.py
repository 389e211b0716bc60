"""Kitex metainfo ↔ ``rpc-transit-*`` / ``rpc-persist-*`` gRPC headers."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tether.grpc import grpc_headers_to_metainfo, metainfo_to_grpc_headers


def test_headers_use_kitex_prefixes_and_kebab_case() -> None:
    """Transient keys become rpc-transit-*, persistent rpc-persist-*, lower-case with dashes."""
    pairs = metainfo_to_grpc_headers({"K1": "v1", "TRACE_ID": "t"}, {"TENANT": "a"})
    assert pairs == [
        ("rpc-transit-k1", "v1"),
        ("rpc-transit-trace-id", "t"),
        ("rpc-persist-tenant", "a"),
    ]


def test_headers_read_back_upper_snake_as_a_kitex_server_sees_them() -> None:
    """The server side upper-cases keys and turns dashes into underscores (K1, TRACE_ID)."""
    transient, persistent = grpc_headers_to_metainfo(
        [
            ("rpc-transit-k1", "v1"),
            ("RPC-Transit-Trace-Id", "t"),
            ("rpc-persist-tenant", "a"),
            ("x-other", "ignored"),
            ("rpc-transit-blob-bin", b"\x00"),
            ("rpc-transit-", "no key"),
            ("rpc-persist-empty", ""),
        ]
    )
    assert transient == {"K1": "v1", "TRACE_ID": "t"}
    assert persistent == {"TENANT": "a"}


def test_empty_keys_and_values_are_dropped() -> None:
    """Kitex drops empty keys and values; so do we."""
    assert metainfo_to_grpc_headers({"": "v", "K": ""}, {"P": ""}) == []


_WORD = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
_KEY = st.lists(_WORD, min_size=1, max_size=3).map("_".join)
_VALUE = st.text("abc xyz-019_=/", min_size=1, max_size=8)


@given(st.dictionaries(_KEY, _VALUE, max_size=4), st.dictionaries(_KEY, _VALUE, max_size=4))
def test_upper_snake_keys_round_trip(transient: dict[str, str], persistent: dict[str, str]) -> None:
    """UPPER_SNAKE keys (Kitex's documented rule) survive the trip through headers."""
    assert grpc_headers_to_metainfo(metainfo_to_grpc_headers(transient, persistent)) == (
        transient,
        persistent,
    )
