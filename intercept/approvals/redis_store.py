"""Approvals on Redis, under the counters' key prefix, so a proxy on one host can be approved from another.

Keys: `<prefix>:a:<id>` (a hash of the approval's fields, expiring `RETAIN_SECONDS` after the
approval does) and `<prefix>:a:pending` (a sorted set of pending ids by expiry, for listing).
Every change of status is one Lua script, atomic across processes and hosts.
"""

from __future__ import annotations

import contextlib
from dataclasses import astuple, fields
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intercept.approvals.model import RETAIN_SECONDS, STATUSES, ApprovalRequest, Decision, Status
from intercept.state.base import StateError
from intercept.state.redis import DEFAULT_PREFIX, RedisStore, validate_prefix

_NAMES = [f.name for f in fields(ApprovalRequest)]

_DECIDE = """
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return false end
if s ~= 'pending' then return s end
if tonumber(redis.call('HGET', KEYS[1], 'expires')) <= tonumber(ARGV[2]) then return 'expired' end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return ARGV[1]
"""
_EXPIRE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
_CONSUME = """
local v = redis.call('HMGET', KEYS[1], 'status', 'tool', 'args_hash', 'policy_version', 'session')
if v[1] ~= 'granted' or v[2] ~= ARGV[1] or v[3] ~= ARGV[2] or v[4] ~= ARGV[3] or v[5] ~= ARGV[4] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'used')
return 1
"""


class RedisApprovals:
    shared = True

    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX, display: str = "redis") -> None:
        self._client = client
        self._prefix = validate_prefix(prefix)
        self.display = display
        self._index = f"{self._prefix}:a:pending"
        self._decide = client.register_script(_DECIDE)
        self._expire = client.register_script(_EXPIRE)
        self._consume = client.register_script(_CONSUME)

    @classmethod
    def from_dsn(cls, dsn: str, prefix: str = DEFAULT_PREFIX) -> RedisApprovals:
        """ValueError (the DSN redacted) if it is malformed; the counter store's connection rules."""
        counters = RedisStore.from_dsn(dsn, prefix)
        return cls(counters._client, prefix, counters.display)

    def _key(self, approval_id: str) -> str:
        return f"{self._prefix}:a:{approval_id}"

    async def _do(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise StateError(f"redis approvals {self.display} failed: {type(exc).__name__}: {exc}") from None

    async def create(self, request: ApprovalRequest) -> None:
        key = self._key(request.id)
        mapping: dict[Any, Any] = {
            name: str(value) for name, value in zip(_NAMES, astuple(request), strict=True)
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expireat(key, int(request.expires + RETAIN_SECONDS))
            pipe.zadd(self._index, {request.id: request.expires})
            pipe.zremrangebyscore(self._index, "-inf", request.created - RETAIN_SECONDS)
            await self._do(pipe.execute())

    async def get(self, approval_id: str) -> ApprovalRequest | None:
        raw = await self._do(self._client.hgetall(self._key(approval_id)))
        return _parse(raw)

    async def decide(self, approval_id: str, decision: Decision, now: float) -> Status | None:
        keys = [self._key(approval_id), self._index]
        result = await self._do(self._decide(keys=keys, args=[decision, repr(now), approval_id]))
        return _status(result) if result else None

    async def expire(self, approval_id: str) -> bool:
        keys = [self._key(approval_id), self._index]
        return bool(await self._do(self._expire(keys=keys, args=[approval_id])))

    async def consume(self, request: ApprovalRequest) -> bool:
        r = request
        args = [r.tool, r.args_hash, r.policy_version, r.session]
        return bool(await self._do(self._consume(keys=[self._key(r.id)], args=args)))

    async def pending(self, now: float) -> list[ApprovalRequest]:
        ids = await self._do(self._client.zrangebyscore(self._index, f"({now!r}", "+inf"))
        found = [await self.get(i.decode() if isinstance(i, bytes) else str(i)) for i in ids]
        items = [a for a in found if a is not None and a.status == "pending"]
        return sorted(items, key=lambda a: a.created)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def _status(raw: Any) -> Status:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    for status in STATUSES:
        if text == status:
            return status
    raise StateError("redis approvals hold an unknown status")


def _parse(raw: dict[Any, Any]) -> ApprovalRequest | None:
    if not raw:
        return None
    data = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    try:
        return ApprovalRequest(
            **{name: data[name] for name in _NAMES if name not in {"created", "expires", "status"}},
            created=float(data["created"]),
            expires=float(data["expires"]),
            status=_status(data["status"]),
        )
    except (KeyError, ValueError):
        raise StateError("a redis approval record is malformed") from None
