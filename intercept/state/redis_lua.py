"""The Lua scripts that make Redis counter reservations atomic.

Each script runs inside Redis as one indivisible step, so proxies on different hosts that share
one Redis share limits exactly. Layout shared by the scripts:

* KEYS[1] is the reservation marker; then two keys per check: for a sliding window the sorted
  set of admitted entries and its running sum, for a calendar window the bucket counter (the
  second key is then unused but keeps the layout uniform).
* ARGV holds `now`, the reservation token, the marker's TTL and the check count, followed by
  seven values per check: kind (`s`/`c`), window seconds, increment, operator (empty for none),
  limit, the TTL in milliseconds for the counter keys, and the check's `any_of` group (0 for
  none; see `intercept.state.base.first_refusal`, which the reserve script mirrors).

A sliding entry is stored as a sorted-set member `<increment>|<token>|<index>` scored by its
time; it counts while `score > now - window`. The running sum avoids summing the set on
every call; trimming subtracts what it removes.
"""

from __future__ import annotations

_COMMON = r"""
local function admits(op, projected, limit)
  if op == '' then return true end
  if op == 'lt' then return projected < limit end
  if op == 'lte' then return projected <= limit end
  if op == 'gt' then return projected > limit end
  if op == 'gte' then return projected >= limit end
  local close = math.abs(projected - limit) <= 1e-9
  if op == 'eq' then return close end
  return not close
end

-- An emptied set resets its sum to exactly zero, so float drift cannot accumulate.
local function subtract(zkey, sumkey, amount)
  if redis.call('ZCARD', zkey) == 0 then
    redis.call('DEL', sumkey)
  else
    redis.call('INCRBYFLOAT', sumkey, -amount)
  end
end

local function trim(zkey, sumkey, cutoff)
  local gone = redis.call('ZRANGEBYSCORE', zkey, '-inf', cutoff)
  if #gone == 0 then return end
  local removed = 0
  for _, member in ipairs(gone) do
    removed = removed + tonumber(string.match(member, '^([^|]+)|'))
  end
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cutoff)
  subtract(zkey, sumkey, removed)
end
"""

RESERVE = (
    _COMMON
    + r"""
local now = tonumber(ARGV[1])
local token = ARGV[2]
local marker_ttl = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local pending = {}
local plan = {}
local group_admits = {}
for i = 1, n do
  local a = 4 + (i - 1) * 7
  local kind, window, inc = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local op, limit, group = ARGV[a + 4], tonumber(ARGV[a + 5]), ARGV[a + 7]
  local k1, k2 = KEYS[2 + (i - 1) * 2], KEYS[3 + (i - 1) * 2]
  local current
  if kind == 's' then
    trim(k1, k2, now - window)
    current = tonumber(redis.call('GET', k2) or '0')
  else
    current = tonumber(redis.call('GET', k1) or '0')
  end
  local projected = current + (pending[k1] or 0) + inc
  local ok = admits(op, projected, limit)
  if ok and group ~= '0' then group_admits[group] = true end
  pending[k1] = (pending[k1] or 0) + inc
  plan[i] = {kind, k1, k2, inc, tonumber(ARGV[a + 6]), ok, group, projected}
end
for i = 1, n do
  if not plan[i][6] and not (plan[i][7] ~= '0' and group_admits[plan[i][7]]) then
    return {0, i - 1, tostring(plan[i][8])}
  end
end
for i = 1, n do
  local kind, k1, k2, inc, ttl = plan[i][1], plan[i][2], plan[i][3], plan[i][4], plan[i][5]
  if kind == 's' then
    redis.call('ZADD', k1, now, tostring(inc) .. '|' .. token .. '|' .. (i - 1))
    redis.call('INCRBYFLOAT', k2, inc)
    redis.call('PEXPIRE', k1, ttl)
    redis.call('PEXPIRE', k2, ttl)
  else
    redis.call('INCRBYFLOAT', k1, inc)
    redis.call('PEXPIRE', k1, ttl)
  end
end
redis.call('SET', KEYS[1], '1', 'EX', marker_ttl)
return {1}
"""
)

ROLLBACK = (
    _COMMON
    + r"""
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
local token = ARGV[2]
local n = tonumber(ARGV[4])
for i = 1, n do
  local a = 4 + (i - 1) * 7
  local kind, inc = ARGV[a + 1], tonumber(ARGV[a + 3])
  local k1, k2 = KEYS[2 + (i - 1) * 2], KEYS[3 + (i - 1) * 2]
  if kind == 's' then
    -- An entry already trimmed out of its window was subtracted from the sum by the trim.
    if redis.call('ZREM', k1, tostring(inc) .. '|' .. token .. '|' .. (i - 1)) == 1 then
      subtract(k1, k2, inc)
    end
  elseif redis.call('EXISTS', k1) == 1 then
    redis.call('INCRBYFLOAT', k1, -inc)
  end
end
return 1
"""
)

SLIDING_VALUE = r"""
local total = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  total = total + tonumber(string.match(member, '^([^|]+)|'))
end
return tostring(total)
"""
