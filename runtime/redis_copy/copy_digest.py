"""Server-side digests: what verification compares instead of whole payloads.

One EVAL per batch and per server answers, in a single string, every key's absolute expiry
and a SHA-1 of its DUMP payload without the trailer (the RDB version and CRC, which differ
between engines for the same value). Both servers digest the same batch at once, and the
client parses one reply per server instead of three per key. A key whose digests differ is
digested again by logical value (sorted members, fields and values: what a newer engine's
re-encoding, or a hashtable's iteration order, cannot change); only a key that still differs
is read whole and compared by the caller. EXISTS for a batch is one reply too.

Each script reads only, and runs for one batch: a few milliseconds on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copy_wire import Link, pack

MISSING = -2
NO_EXPIRY = -1

# The server's time in ms, then per key "<absolute expiry ms or -1/-2> <sha1 of the DUMP
# body>", one line each.
_DUMP_DIGESTS = b"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {string.format('%d', now)}
for i, key in ipairs(KEYS) do
  local pttl = redis.call('PTTL', key)
  if pttl == -2 then
    out[i + 1] = '-2 -'
  else
    local payload = redis.call('DUMP', key)
    if not payload then
      out[i + 1] = '-2 -'
    else
      local at = -1
      if pttl >= 0 then at = now + pttl end
      out[i + 1] = string.format('%d', at) .. ' ' .. redis.sha1hex(string.sub(payload, 1, -11))
    end
  end
end
return table.concat(out, '\\n')
"""

# Per key a SHA-1 of its type and logical value ('-' for a stream or a missing key).
_VALUE_DIGESTS = b"""
local function framed(items)
  local parts = {}
  for i, item in ipairs(items) do parts[i] = #item .. ':' .. item end
  return table.concat(parts)
end
local function pairs_of(flat)
  local items = {}
  for i = 1, #flat, 2 do items[#items + 1] = #flat[i] .. ':' .. flat[i] .. flat[i + 1] end
  table.sort(items)
  return items
end
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local body = nil
  if kind == 'string' then
    body = redis.call('GET', key)
  elseif kind == 'hash' then
    body = framed(pairs_of(redis.call('HGETALL', key)))
  elseif kind == 'list' then
    body = framed(redis.call('LRANGE', key, 0, -1))
  elseif kind == 'set' then
    local members = redis.call('SMEMBERS', key)
    table.sort(members)
    body = framed(members)
  elseif kind == 'zset' then
    body = framed(redis.call('ZRANGE', key, 0, -1, 'WITHSCORES'))
  end
  if body then out[i] = redis.sha1hex(kind .. ':' .. body) else out[i] = '-' end
end
return table.concat(out, '\\n')
"""

_EXISTS = b"""
local out = {}
for i, key in ipairs(KEYS) do out[i] = tostring(redis.call('EXISTS', key)) end
return table.concat(out)
"""


@dataclass(frozen=True)
class Digest:
    """A key's absolute expiry in the server's clock (NO_EXPIRY, MISSING) and its digest."""

    expire_at: int
    digest: bytes


def _eval(script: bytes, keys: Sequence[bytes]) -> bytes:
    return pack(b"EVAL", script, b"%d" % len(keys), *keys)


def request_digests(link: Link, keys: Sequence[bytes]) -> None:
    """Send the DUMP-digest script for `keys`; read it with `read_digests`."""
    link.send(_eval(_DUMP_DIGESTS, keys))


def read_digests(link: Link) -> tuple[int, list[Digest]]:
    """The server's time in ms when it digested the batch, and each key's digest."""
    now, *lines = _one(link).split(b"\n")
    digests = []
    for line in lines:
        expire_at, _, digest = line.partition(b" ")
        digests.append(Digest(int(expire_at), digest))
    return int(now), digests


def request_value_digests(link: Link, keys: Sequence[bytes]) -> None:
    link.send(_eval(_VALUE_DIGESTS, keys))


def read_value_digests(link: Link) -> list[bytes | None]:
    return [None if digest == b"-" else digest for digest in _one(link).split(b"\n")]


def existing(link: Link, keys: Sequence[bytes]) -> list[bool]:
    """Whether each key exists, in one round trip and one reply."""
    if not keys:
        return []
    link.send(_eval(_EXISTS, keys))
    return [flag == ord("1") for flag in _one(link)]


def _one(link: Link) -> bytes:
    reply = link.read(1)[0]
    if isinstance(reply, Exception):
        raise reply
    return reply if isinstance(reply, bytes) else b""
