"""Server-side digests for verification: one EVAL per batch and server, one reply each.

A key whose DUMP payloads differ in more than their trailer may still hold the same value: a
hashtable-encoded set iterates in another order after RESTORE, and a newer engine re-encodes
a Redis 6.2 ziplist as a listpack. Such keys are digested by logical value on both servers
(type, then sorted fields, members and scores, each framed by its length): what an encoding
cannot change. Only keys whose value digests still differ (or streams, which are not
digested) are read whole by the caller. EXISTS for a batch is one reply too: one multi-key
EXISTS (a count, with no script), and a script naming the missing keys only when the count
is short.

Each script reads only, and runs for one batch: a few milliseconds on the server.
"""

from __future__ import annotations

from collections.abc import Sequence

from copy_wire import Link, pack

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


def _eval(script: bytes, keys: Sequence[bytes]) -> bytes:
    return pack(b"EVAL", script, b"%d" % len(keys), *keys)


def request_value_digests(link: Link, keys: Sequence[bytes]) -> None:
    link.send(_eval(_VALUE_DIGESTS, keys))


def read_value_digests(link: Link) -> list[bytes | None]:
    return [None if digest == b"-" else digest for digest in _one(link).split(b"\n")]


def existing(link: Link, keys: Sequence[bytes]) -> list[bool]:
    """Whether each key exists. EXISTS counts every key named that exists, once per mention,
    so a count equal to the number of keys means all of them do: one cheap command for the
    usual batch, and the per-key script only for a batch with a key missing."""
    if not keys:
        return []
    link.send(pack(b"EXISTS", *keys))
    count = link.read(1)[0]
    if isinstance(count, Exception):
        raise count
    if count == len(keys):
        return [True] * len(keys)
    link.send(_eval(_EXISTS, keys))
    return [flag == ord("1") for flag in _one(link)]


def _one(link: Link) -> bytes:
    reply = link.read(1)[0]
    if isinstance(reply, Exception):
        raise reply
    return reply if isinstance(reply, bytes) else b""
