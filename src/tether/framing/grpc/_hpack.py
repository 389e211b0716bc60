"""Header block coding (HPACK, RFC 7541) for the gRPC codec, on top of the ``hpack`` package.

Encoding has two forms:

* *stateless* blocks: static-table references and literals "without indexing", never
  touching the dynamic table. Such a block can be built once and reused, and may leave
  in any order (trailers queued behind flow-controlled DATA). Literals of these
  constant blocks are Huffman-coded where that is shorter; per-call metadata values
  stay raw (see :func:`encode_metadata`).
* *indexed* blocks (:class:`EncoderTable`): the constant fields of a connection's
  heads (a method's ``:path``, ``content-type``, ``user-agent``, ``grpc-status: 0``,
  ...) are inserted into the peer's dynamic table once and then sent as one-byte
  references. Such blocks depend on the order blocks reach the peer, so the codec uses
  them only for blocks written at once, never for blocks queued behind DATA.

Decoding accepts all of HPACK. Blocks made only of table references and literals
without indexing (what our own encoder emits after the first call) take a fast path
that reads the dynamic table without changing it, and their decoded form is cached by
their bytes (tagged with the table's generation when it depends on the table). Every
other block goes through :class:`hpack.Decoder`, which owns the dynamic table.

Both paths enforce the header list size limit (RFC 9113 §6.5.2, name + value + 32 per
field): the defence against an HPACK bomb, a small block that expands to a huge list.
"""

from __future__ import annotations

from typing import Any, Final

from hpack import Decoder, HPACKError, OversizedHeaderListError
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

from ..._exceptions import ErrorCode, RemoteProtocolError

HeaderList = tuple[tuple[bytes, bytes], ...]

#: The RFC 7541 static table; entry ``i`` is index ``i + 1``.
STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = tuple(HeaderTable.STATIC_TABLE)
_STATIC_SIZE: Final = len(STATIC_TABLE)
_STATIC_FIELD: Final = {entry: index for index, entry in enumerate(STATIC_TABLE, 1)}
_STATIC_NAME: Final[dict[bytes, int]] = {}
for _index, (_name, _value) in enumerate(STATIC_TABLE, 1):
    _STATIC_NAME.setdefault(_name, _index)
#: Per-field overhead counted by the header list size (RFC 9113 §6.5.2).
FIELD_OVERHEAD: Final = 32
#: Decoded blocks kept per connection, and the largest block kept: bounded so that a
#: peer sending distinct big header blocks cannot grow a connection's memory.
_CACHE_SIZE: Final = 64
CACHEABLE_BLOCK: Final = 512
#: Our encoding of a ``grpc-timeout`` field name (a raw literal without indexing).
TIMEOUT_FIELD: Final = b"\x00\x0cgrpc-timeout"


def encode_integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer with an N-bit prefix; ``first`` holds the pattern bits above it."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: RFC 7541 Appendix B: each byte's Huffman code as a string of "0"/"1", and its length.
_HUFFMAN_BITS: Final = tuple(
    format(code, f"0{length}b")
    for code, length in zip(REQUEST_CODES[:256], REQUEST_CODES_LENGTH[:256], strict=True)
)
_HUFFMAN_LENGTH: Final = tuple(REQUEST_CODES_LENGTH[:256])


def huffman_encode(data: bytes) -> bytes:
    """``data`` Huffman-coded (RFC 7541 §5.2), padded with the EOS prefix (1 bits)."""
    bits = "".join(map(_HUFFMAN_BITS.__getitem__, data))
    pad = -len(bits) % 8
    return int(bits + "1" * pad, 2).to_bytes((len(bits) + pad) >> 3, "big") if bits else b""


def encode_string(data: bytes) -> bytes:
    """An HPACK string literal: Huffman-coded when that is shorter, else raw."""
    n = len(data)
    if n > 1:
        size = (sum(map(_HUFFMAN_LENGTH.__getitem__, data)) + 7) >> 3
        if size < n:
            return encode_integer(size, 7, 0x80) + huffman_encode(data)
    return encode_integer(n, 7, 0) + data


def encode_raw_string(data: bytes) -> bytes:
    """A raw (not Huffman-coded) HPACK string literal (cheapest to build per call)."""
    return encode_integer(len(data), 7, 0) + data


def encode_field(name: bytes, value: bytes) -> bytes:
    """One header field, without touching the dynamic table.

    A static-table match becomes a one-byte reference; a static-table name a literal
    with an indexed name; anything else a literal with a literal name.
    """
    index = _STATIC_FIELD.get((name, value))
    if index is not None:
        return encode_integer(index, 7, 0x80)
    index = _STATIC_NAME.get(name)
    if index is not None:
        return encode_integer(index, 4, 0) + encode_string(value)
    return b"\x00" + encode_string(name) + encode_string(value)


def encode_block(fields: list[tuple[bytes, bytes]] | HeaderList) -> bytes:
    """A whole header block of stateless representations."""
    return b"".join([encode_field(name, value) for name, value in fields])


#: Encoded names of per-call metadata fields (a literal with a literal name, or with a
#: static-table name index), each built once; bounded, as names come from callers.
_METADATA_NAMES: dict[bytes, bytes] = {}
_METADATA_NAMES_MAX: Final = 512


def encode_metadata(fields: list[tuple[bytes, bytes]]) -> bytes:
    """Per-call metadata fields, stateless: names Huffman-coded where shorter (built once
    per name), values raw. Huffman-coding a value costs more CPU than the bytes it saves
    on a loopback or LAN call (values change from call to call, so nothing is reused)."""
    names = _METADATA_NAMES
    parts = []
    for name, value in fields:
        prefix = names.get(name)
        if prefix is None:
            index = _STATIC_NAME.get(name)
            prefix = (
                encode_integer(index, 4, 0) if index is not None else b"\x00" + encode_string(name)
            )
            if len(names) >= _METADATA_NAMES_MAX:
                names.clear()
            names[name] = prefix
        n = len(value)
        parts.append(prefix + (bytes((n,)) if n < 0x7F else encode_integer(n, 7, 0)) + value)
    return b"".join(parts)


def table_size_update(size: int) -> bytes:
    """A dynamic table size update (sent when the peer shrinks its HEADER_TABLE_SIZE)."""
    return encode_integer(size, 5, 0x20)


#: The most of the peer's dynamic table we use (HTTP/2's default HEADER_TABLE_SIZE).
ENCODER_TABLE_SIZE: Final = 4096


class EncoderTable:
    """Our model of the peer's HPACK dynamic table: the fields we inserted into it.

    Only the fields handed to :meth:`encode` with ``index=True`` are inserted, and only
    while they fit: the table never evicts, so an inserted field stays at a known place.
    A field that does not fit goes out stateless. Every insertion moves the older
    entries' indexes, so :attr:`generation` (changed by every insertion, and when the
    table is given up) tags blocks built from it: a block is reusable while the
    generation it was built at is current and building it inserted nothing.

    When the peer shrinks its HEADER_TABLE_SIZE, a table still empty shrinks with it
    (the codec sends the size update); a table in use is given up for the connection
    (blocks become stateless), since the peer may evict what we inserted.

    Blocks built with insertions or references must reach the peer in the order they
    were built (the codec uses them only for blocks it writes at once).
    """

    __slots__ = ("_fields", "capacity", "enabled", "generation", "size")

    def __init__(self, capacity: int = ENCODER_TABLE_SIZE) -> None:
        self.capacity = capacity
        self.size = 0
        self.enabled = capacity > 0
        self.generation = 0
        #: field -> insertion number (0 for the first field inserted).
        self._fields: dict[tuple[bytes, bytes], int] = {}

    def __len__(self) -> int:
        return len(self._fields)

    def encode(self, fields: list[tuple[bytes, bytes]], *, index: bool = True) -> bytes:
        """A block of ``fields``: references to fields already in the table, and (with
        ``index``) the others inserted when they fit; everything else stateless."""
        if not self.enabled:
            return encode_block(fields)
        out = []
        known = self._fields
        for field in fields:
            position = _STATIC_FIELD.get(field)
            if position is not None:
                out.append(encode_integer(position, 7, 0x80))
                continue
            inserted = known.get(field)
            if inserted is not None:
                out.append(encode_integer(_STATIC_SIZE + len(known) - inserted, 7, 0x80))
                continue
            name, value = field
            entry = len(name) + len(value) + FIELD_OVERHEAD
            if not index or self.size + entry > self.capacity:
                out.append(encode_field(name, value))
                continue
            name_index = _STATIC_NAME.get(name)
            if name_index is not None:
                out.append(encode_integer(name_index, 6, 0x40) + encode_string(value))
            else:
                out.append(b"\x40" + encode_string(name) + encode_string(value))
            known[field] = len(known)
            self.size += entry
            self.generation += 1
        return b"".join(out)

    def mark(self) -> tuple[int, int, int]:
        """The state to :meth:`rollback` to if a block built next is not sent after all."""
        return len(self._fields), self.size, self.generation

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Forget the insertions made since ``mark`` (their block never left)."""
        count, size, _ = mark
        if len(self._fields) > count:
            self._fields = {f: n for f, n in self._fields.items() if n < count}
            self.size = size
            self.generation += 1  # fresh: no block built meanwhile may be reused

    def resize(self, peer_size: int) -> None:
        """The peer announced HEADER_TABLE_SIZE ``peer_size`` (larger sizes are not used)."""
        if peer_size >= self.capacity:
            return
        if self._fields:
            self.enabled = False  # the peer may evict our entries: stop using them
            self._fields = {}
            self.size = 0
            self.generation += 1
        self.capacity = peer_size
        self.enabled = self.enabled and peer_size > 0


class HeaderDecoder:
    """Decodes the peer's header blocks; one per connection (HPACK state is per connection).

    Raises :class:`~tether.RemoteProtocolError` (COMPRESSION_ERROR for a malformed
    block, ENHANCE_YOUR_CALM for a header list above ``max_list_size``); after that the
    connection must close (the HPACK state is lost).
    """

    __slots__ = (
        "_cache",
        "_decoder",
        "_split_cache",
        "_table_keys",
        "_used_table",
        "max_list_size",
    )

    def __init__(self, max_list_size: int) -> None:
        self.max_list_size = max_list_size
        self._decoder = Decoder(max_header_list_size=max_list_size)
        #: Decoded blocks, by their bytes. Blocks that reference the dynamic table
        #: without changing it (what an indexing encoder, ours or grpcio's, sends for a
        #: repeated head) are cached too, and forgotten (:attr:`_table_keys`) as soon as
        #: a block that may change the table is decoded.
        self._cache: dict[bytes, HeaderList] = {}
        #: The same for request blocks around a raw grpc-timeout (keyed without it).
        self._split_cache: dict[tuple[int, bytes], HeaderList] = {}
        #: Keys of both caches whose fields came from the dynamic table.
        self._table_keys: list[tuple[dict[Any, HeaderList], Any]] = []
        self._used_table = False  # set by _decode_stateless when it read the table

    def decode(self, block: bytes) -> HeaderList:
        """The header fields of ``block``, in order, as ``(name, value)`` bytes pairs."""
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        self._used_table = False
        fields = self._decode_stateless(block)
        if fields is None:
            if self._table_keys:  # the block may change the dynamic table
                self._forget_table_entries()
            return self._decode_full(block)
        if len(block) <= CACHEABLE_BLOCK:
            self._remember(self._cache, block, fields)
        return fields

    def _remember(self, cache: dict[Any, HeaderList], key: Any, fields: HeaderList) -> None:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
            self._table_keys = [entry for entry in self._table_keys if entry[0] is not cache]
        cache[key] = fields
        if self._used_table:
            self._table_keys.append((cache, key))

    def _forget_table_entries(self) -> None:
        for cache, key in self._table_keys:
            cache.pop(key, None)
        self._table_keys = []

    def decode_request(self, block: bytes) -> tuple[HeaderList, bytes | None]:
        """Decode a request block, taking a raw ``grpc-timeout`` literal out of it.

        Returns:
            ``(fields, None)`` for most blocks, as :meth:`decode`; ``(fields without
            grpc-timeout, its value)`` when the block is stateless around a raw
            ``grpc-timeout`` literal (what our encoder emits). The rest of such a block is
            the same for every call of a method, so its decoding is cached even though
            the timeout changes on every call.

        The split is exact: the bytes before the literal must decode completely as
        stateless fields (so the literal starts at a field boundary) and so must the
        bytes after it.
        """
        pos = block.find(TIMEOUT_FIELD)
        if pos > 0:
            start = pos + len(TIMEOUT_FIELD)
            if start < len(block):
                length = block[start]
                end = start + 1 + length
                if length < 0x7F and end <= len(block):
                    key = (pos, block[:pos] + block[end:])
                    fields = self._split_cache.get(key)
                    if fields is None:
                        self._used_table = False
                        fields = self._decode_split(block, pos, end)
                        if fields is not None and len(key[1]) <= CACHEABLE_BLOCK:
                            self._remember(self._split_cache, key, fields)
                    if fields is not None:
                        return fields, block[start + 1 : end]
        return self.decode(block), None

    def _decode_split(self, block: bytes, pos: int, end: int) -> HeaderList | None:
        before = self._decode_stateless(block[:pos])
        if before is None:
            return None
        after = self._decode_stateless(block[end:])
        if after is None:
            return None
        fields = before + after
        self._check_size(((b"grpc-timeout", block[pos + len(TIMEOUT_FIELD) + 1 : end]), *fields))
        return fields

    def _decode_full(self, block: bytes) -> HeaderList:
        try:
            fields = self._decoder.decode(block, raw=True)
        except OversizedHeaderListError as exc:
            raise RemoteProtocolError(
                f"header list exceeds {self.max_list_size} bytes: {exc}",
                error_code=ErrorCode.ENHANCE_YOUR_CALM,
            ) from exc
        except HPACKError as exc:
            raise RemoteProtocolError(
                f"malformed header block: {exc}", error_code=ErrorCode.COMPRESSION_ERROR
            ) from exc
        except (IndexError, ValueError) as exc:  # defensive: hpack on truncated input
            raise RemoteProtocolError(
                f"malformed header block: {exc!r}", error_code=ErrorCode.COMPRESSION_ERROR
            ) from exc
        result = tuple((bytes(name), bytes(value)) for name, value in fields)
        self._check_size(result)
        return result

    def _check_size(self, fields: HeaderList) -> None:
        size = 0
        for name, value in fields:
            size += len(name) + len(value) + FIELD_OVERHEAD
        if size > self.max_list_size:
            raise RemoteProtocolError(
                f"header list of {size} bytes exceeds {self.max_list_size}",
                error_code=ErrorCode.ENHANCE_YOUR_CALM,
            )

    def _dynamic_entry(self, index: int) -> tuple[bytes, bytes] | None:
        """Dynamic table entry ``index`` (62 and up), read without changing the table;
        ``None`` if there is none (the full decoder then reports the error)."""
        entries = self._decoder.header_table.dynamic_entries
        position = index - _STATIC_SIZE - 1
        if position >= len(entries):
            return None
        self._used_table = True
        name, value = entries[position]
        return bytes(name), bytes(value)

    def _decode_stateless(self, block: bytes) -> HeaderList | None:
        """Decode a block of table references and literals without indexing (reading the
        dynamic table, never changing it; sets ``_used_table`` when it read it);
        ``None`` when it uses anything else (then :class:`hpack.Decoder` must see it)."""
        out: list[tuple[bytes, bytes]] = []
        pos = 0
        end = len(block)
        size = 0
        limit = self.max_list_size
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # indexed field
                index = byte & 0x7F
                if 0 < index <= _STATIC_SIZE:
                    field = STATIC_TABLE[index - 1]
                else:
                    if not _STATIC_SIZE < index < 0x7F:
                        return None  # index 0, or a multi-byte index
                    entry = self._dynamic_entry(index)
                    if entry is None:
                        return None
                    field = entry
                pos += 1
            elif byte & 0xE0 == 0:  # literal without indexing (0000) / never indexed (0001)
                index = byte & 0x0F
                pos += 1
                if index == 0x0F:
                    if pos >= end or block[pos] & 0x80:
                        return None  # an index too large for the static table
                    index = 0x0F + block[pos]
                    pos += 1
                if index:
                    if index <= _STATIC_SIZE:
                        name = STATIC_TABLE[index - 1][0]
                    else:
                        entry = self._dynamic_entry(index)
                        if entry is None:
                            return None
                        name = entry[0]
                else:
                    if pos >= end:
                        return None
                    length = block[pos]
                    if length & 0x80 or length == 0x7F:
                        text = _read_string(block, pos)  # Huffman-coded or long
                        if text is None:
                            return None
                        name, pos = text
                    else:
                        name = block[pos + 1 : pos + 1 + length]
                        pos += 1 + length
                        if pos > end:
                            return None
                if pos >= end:
                    return None
                length = block[pos]
                if length & 0x80 or length == 0x7F:
                    text = _read_string(block, pos)
                    if text is None:
                        return None
                    value, pos = text
                else:
                    value = block[pos + 1 : pos + 1 + length]
                    pos += 1 + length
                    if pos > end:
                        return None
                field = (name, value)
            else:
                return None  # incremental indexing or a table size update
            size += len(field[0]) + len(field[1]) + FIELD_OVERHEAD
            if size > limit:
                raise RemoteProtocolError(
                    f"header list exceeds {limit} bytes",
                    error_code=ErrorCode.ENHANCE_YOUR_CALM,
                )
            out.append(field)
        return tuple(out)


def _read_string(block: bytes, pos: int) -> tuple[bytes, int] | None:
    """The string literal at ``pos`` (Huffman-coded or raw, any length) and the position
    after it; ``None`` when it is malformed (the full decoder then reports it)."""
    first = block[pos]
    length = first & 0x7F
    pos += 1
    if length == 0x7F:
        shift = 0
        length = 0
        while True:
            if pos >= len(block) or shift > 28:
                return None
            byte = block[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        length += 0x7F
    end = pos + length
    if end > len(block):
        return None
    data = block[pos:end]
    if first & 0x80:
        try:
            data = decode_huffman(data)
        except HPACKError:
            return None
    return data, end
