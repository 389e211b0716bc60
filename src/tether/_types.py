"""Type aliases shared by every layer."""

from __future__ import annotations

from typing import TypeAlias

#: Anything that exposes the buffer protocol and can be sent without copying.
BufferLike: TypeAlias = bytes | bytearray | memoryview

#: A metadata value: text, or bytes for keys that end in ``-bin`` (the gRPC convention).
MetadataValue: TypeAlias = str | bytes

#: Metadata as it travels inside events: an ordered, hashable tuple of (key, value) pairs.
MetadataPairs: TypeAlias = tuple[tuple[str, MetadataValue], ...]
