"""Kitex metainfo over gRPC: ``rpc-transit-<k>`` / ``rpc-persist-<k>`` headers.

Kitex (bytedance/gopkg ``cloud/metainfo``) carries the same key/value metainfo over two
wires: TTHeader str-KV entries ``RPC_TRANSIT_<K>`` / ``RPC_PERSIST_<K>``, and HTTP/2
(gRPC) headers ``rpc-transit-<k>`` / ``rpc-persist-<k>``. Keys convert between the two
spellings like CGI variables and HTTP headers: lower-case with ``_`` → ``-`` on the way to
headers, upper-case with ``-`` → ``_`` on the way back, so only ``UPPER_SNAKE`` keys
round-trip exactly (Kitex's documented rule). Empty keys and empty values are dropped.

The functions work on plain dicts so they do not depend on where the metainfo lives; the
TTHeader side uses the same ``transient`` / ``persistent`` maps (keys without prefix).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._types import MetadataValue

TRANSIENT_HEADER_PREFIX = "rpc-transit-"
PERSISTENT_HEADER_PREFIX = "rpc-persist-"


def key_to_header(key: str) -> str:
    """``"MY_KEY"`` → ``"my-key"`` (gopkg's ``CGIVariableToHTTPHeader``)."""
    return key.lower().replace("_", "-")


def header_to_key(name: str) -> str:
    """``"my-key"`` → ``"MY_KEY"`` (gopkg's ``HTTPHeaderToCGIVariable``)."""
    return name.upper().replace("-", "_")


def metainfo_to_grpc_headers(
    transient: Mapping[str, str], persistent: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The gRPC metadata pairs that carry ``transient`` and ``persistent`` metainfo.

    Transient values go as ``rpc-transit-<key>``, persistent ones as
    ``rpc-persist-<key>``; entries with an empty key or value are skipped (as Kitex does).
    """
    pairs: list[tuple[str, str]] = []
    for prefix, values in (
        (TRANSIENT_HEADER_PREFIX, transient),
        (PERSISTENT_HEADER_PREFIX, persistent),
    ):
        for key, value in values.items():
            if key and value:
                pairs.append((prefix + key_to_header(key), value))
    return pairs


def grpc_headers_to_metainfo(
    headers: Iterable[tuple[str, MetadataValue]],
) -> tuple[dict[str, str], dict[str, str]]:
    """Read ``(transient, persistent)`` metainfo out of gRPC metadata pairs.

    Header names are matched case-insensitively; keys come back upper-cased (``K1`` for
    ``rpc-transit-k1``, as a Kitex server sees them). Other headers, binary (``-bin``)
    values, and empty keys or values are ignored; a later duplicate wins.
    """
    transient: dict[str, str] = {}
    persistent: dict[str, str] = {}
    for name, value in headers:
        if not isinstance(value, str) or not value:
            continue
        lowered = name.lower()
        if lowered.startswith(TRANSIENT_HEADER_PREFIX):
            target, rest = transient, lowered[len(TRANSIENT_HEADER_PREFIX) :]
        elif lowered.startswith(PERSISTENT_HEADER_PREFIX):
            target, rest = persistent, lowered[len(PERSISTENT_HEADER_PREFIX) :]
        else:
            continue
        if rest:
            target[header_to_key(rest)] = value
    return transient, persistent
