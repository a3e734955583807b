"""Comparing DUMP payloads whose bytes differ only by element order, without asking a server.

A hashtable-encoded set or hash is written in its hashtable's iteration order, which a RESTORE
does not keep: the same value dumps to other bytes on the target. Its payload is a count, then
each element (a set's member, a hash's field and value) as an RDB string. An RDB string's bytes
decode to exactly one value, so two payloads holding the same element encodings in any order
hold the same value. When they do not (another engine encoded a member otherwise, another
type, a payload too big to walk here), the caller compares by value as before.
"""

from __future__ import annotations

# RDB object types whose payload is a count, then unordered elements of this many strings.
_UNORDERED = {2: 1, 4: 2}  # RDB_TYPE_SET: a member; RDB_TYPE_HASH: a field and its value.
_TRAILER = 10  # the RDB version (2 bytes) and a CRC64 (8 bytes)
_LARGEST = 1 << 20
_INTEGER_SIZES = (1, 2, 4)  # RDB_ENC_INT8, INT16, INT32
_LZF = 3


def same_unordered(source: bytes, target: bytes) -> bool:
    """True when both payloads are the same hashtable-encoded set or hash, whatever the order
    of their elements; False when they differ or cannot be told apart this way."""
    kind = source[0]
    strings = _UNORDERED.get(kind)
    if strings is None or target[0] != kind or max(len(source), len(target)) > _LARGEST:
        return False
    ours = _elements(source, strings)
    return ours is not None and ours == _elements(target, strings)


def _elements(payload: bytes, strings: int) -> list[bytes] | None:
    """Each element's encoded bytes, sorted; None when the payload does not parse exactly."""
    end = len(payload) - _TRAILER
    try:
        count, at, _ = _length(payload, 1)
        elements = []
        for _ in range(count):
            start = at
            for _ in range(strings):
                at = _string_end(payload, at)
            elements.append(payload[start:at])
    except IndexError:
        return None
    return sorted(elements) if at == end else None


def _length(payload: bytes, at: int) -> tuple[int, int, bool]:
    """An RDB length at `at`: its value, the offset after it, and whether it is a special
    string encoding (then the value names the encoding)."""
    first = payload[at]
    form = first >> 6
    if form == 0:
        return first & 0x3F, at + 1, False
    if form == 1:
        return ((first & 0x3F) << 8) | payload[at + 1], at + 2, False
    if form == 3:
        return first & 0x3F, at + 1, True
    size = {0x80: 4, 0x81: 8}.get(first)
    if size is None or at + 1 + size > len(payload):
        raise IndexError(at)
    return int.from_bytes(payload[at + 1 : at + 1 + size], "big"), at + 1 + size, False


def _string_end(payload: bytes, at: int) -> int:
    """The offset after the RDB string that starts at `at`."""
    value, at, special = _length(payload, at)
    if not special:
        end = at + value
    elif value < len(_INTEGER_SIZES):
        end = at + _INTEGER_SIZES[value]
    elif value == _LZF:
        compressed, at, _ = _length(payload, at)
        _, at, _ = _length(payload, at)
        end = at + compressed
    else:
        raise IndexError(at)
    if end > len(payload):
        raise IndexError(at)
    return end
