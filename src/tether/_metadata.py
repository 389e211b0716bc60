"""Metadata: an ordered multi-dict of str keys to text (or bytes, for ``-bin`` keys)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

from ._exceptions import ConfigError
from ._types import MetadataPairs, MetadataValue

MetadataLike: TypeAlias = (
    "Metadata | Mapping[str, MetadataValue] | Iterable[tuple[str, MetadataValue]] | None"
)

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def is_binary_key(key: str) -> bool:
    """Keys ending in ``-bin`` carry bytes; every other key carries text (gRPC's rule)."""
    return key.endswith("-bin")


def validate_pair(key: str, value: MetadataValue) -> tuple[str, MetadataValue]:
    """Normalise one pair: keys are lower-cased; ``-bin`` values are bytes, others text."""
    key = key.lower()
    if not key or not set(key) <= _ALLOWED:
        raise ConfigError(f"invalid metadata key {key!r}: use [0-9a-z_.-]")
    if is_binary_key(key):
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, bytes):
            raise ConfigError(f"metadata key {key!r} needs a bytes value")
    elif isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"metadata key {key!r} is text; name it {key}-bin for bytes") from exc
    elif not isinstance(value, str):
        raise ConfigError(f"metadata key {key!r} needs a str value, got {type(value).__name__}")
    return key, value


class Metadata(Mapping[str, MetadataValue]):
    """Ordered multi-dict of call metadata. ``md[key]`` gives the last value; ``getall`` all."""

    __slots__ = ("_pairs",)

    def __init__(self, source: MetadataLike = None) -> None:
        self._pairs: list[tuple[str, MetadataValue]] = []
        if source is None:
            return
        items: Iterable[tuple[str, MetadataValue]]
        if isinstance(source, Metadata):
            self._pairs = list(source._pairs)
            return
        items = source.items() if isinstance(source, Mapping) else source
        for key, value in items:
            self._pairs.append(validate_pair(key, value))

    @classmethod
    def from_pairs(cls, pairs: MetadataPairs) -> Metadata:
        """Wrap already-validated wire pairs without re-checking them."""
        md = cls()
        md._pairs = list(pairs)
        return md

    def to_pairs(self) -> MetadataPairs:
        """The pairs as a hashable tuple, as events carry them."""
        return tuple(self._pairs)

    def add(self, key: str, value: MetadataValue) -> None:
        """Append a value (keeps earlier values of the same key)."""
        self._pairs.append(validate_pair(key, value))

    def __setitem__(self, key: str, value: MetadataValue) -> None:
        key, value = validate_pair(key, value)
        self._pairs = [p for p in self._pairs if p[0] != key]
        self._pairs.append((key, value))

    def __delitem__(self, key: str) -> None:
        key = key.lower()
        if key not in self:
            raise KeyError(key)
        self._pairs = [p for p in self._pairs if p[0] != key]

    def __getitem__(self, key: str) -> MetadataValue:
        key = key.lower()
        for k, v in reversed(self._pairs):
            if k == key:
                return v
        raise KeyError(key)

    def getall(self, key: str) -> list[MetadataValue]:
        """Every value of ``key``, in order."""
        key = key.lower()
        return [v for k, v in self._pairs if k == key]

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self._pairs:
            seen.setdefault(k, None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._pairs})

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(k == key.lower() for k, _ in self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Metadata):
            return self._pairs == other._pairs
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._pairs))

    def __repr__(self) -> str:
        return f"Metadata({self._pairs!r})"


def to_pairs(source: MetadataLike) -> MetadataPairs:
    """Validate any metadata-like input into wire pairs."""
    if source is None:
        return ()
    if isinstance(source, Metadata):
        return source.to_pairs()
    return Metadata(source).to_pairs()
