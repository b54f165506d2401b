"""Counter store on Redis, shared by every proxy instance that points at the same server.

`--state redis://[user:password@]host:port/db` (or `rediss://`, `unix://`) with `--state-prefix`
naming the key space. Reserve and rollback each run as one Lua script, so the check-and-increment
is atomic across processes and hosts; commit only deletes the reservation marker, which is what
makes a later rollback a no-op. Any Redis failure is raised as `StateError`, and the proxy then
applies `--state-fail-mode`. The DSN's password never leaves this module except redacted.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from intercept.state import redis_lua
from intercept.state.base import (
    CounterCheck,
    Refusal,
    Reservation,
    StateError,
    WindowKind,
    calendar_bucket,
)

REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PREFIX = "intercept"
PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,64}$")
SOCKET_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 64
_MARKER_GRACE_SECONDS = 3600
"""A reservation marker outlives the longest window by this much, then expires on its own."""


def is_redis_dsn(value: str) -> bool:
    return urlsplit(value).scheme in REDIS_SCHEMES


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by `***`, safe for logs, status output and the audit log."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparseable redis DSN>"
    query = re.sub(r"(?i)((?:^|&)password=)[^&]*", r"\1***", parts.query)
    if parts.password is None:
        return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", dsn)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


def validate_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix):
        raise ValueError(
            f"state prefix {prefix!r} is invalid; use 1-64 characters of letters, digits and _ . : - {{ }}"
        )
    return prefix


class RedisStore:
    """`CounterStore` on Redis. Keys: `<prefix>:s:<window>:<key>` (sliding entries and sum),
    `<prefix>:c:<window>:<bucket>:<key>` (calendar buckets, expiring after their window),
    `<prefix>:r:<token>` (reservation markers)."""

    eager_safe = False
    """Every method awaits the server."""

    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX, display: str = "redis") -> None:
        self._client = client
        self._prefix = validate_prefix(prefix)
        self.display = display
        self._reserve = client.register_script(redis_lua.RESERVE)
        self._rollback = client.register_script(redis_lua.ROLLBACK)
        self._sliding_value = client.register_script(redis_lua.SLIDING_VALUE)

    @classmethod
    def from_dsn(cls, dsn: str, prefix: str = DEFAULT_PREFIX) -> RedisStore:
        """Build a store from a DSN; raises ValueError (with the DSN redacted) if it is malformed."""
        display = redact_dsn(dsn)
        if not is_redis_dsn(dsn):
            raise ValueError(f"state DSN {display!r} is not a redis://, rediss:// or unix:// URL")
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                dsn,
                max_connections=MAX_CONNECTIONS,
                timeout=SOCKET_TIMEOUT_SECONDS,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            )
        except (ValueError, TypeError) as exc:
            # redis-py's messages can quote the URL; never echo it.
            raise ValueError(f"state DSN {display!r} is invalid ({type(exc).__name__})") from None
        return cls(aioredis.Redis.from_pool(pool), prefix, display)

    # -- keys ------------------------------------------------------------------------------

    def _counter_keys(self, check: CounterCheck, at: float) -> tuple[str, str]:
        if check.kind == "sliding":
            base = f"{self._prefix}:s:{check.window_seconds}:{check.key}"
            return base, base + ":sum"
        bucket = calendar_bucket(at, check.window_seconds)
        key = f"{self._prefix}:c:{check.window_seconds}:{bucket}:{check.key}"
        return key, key

    def _marker(self, token: str) -> str:
        return f"{self._prefix}:r:{token}"

    def _script_args(
        self, checks: Sequence[CounterCheck], at: float, token: str
    ) -> tuple[list[str], list[Any]]:
        keys = [self._marker(token)]
        argv: list[Any] = [repr(at), token, self._marker_ttl(checks), len(checks)]
        for check in checks:
            keys.extend(self._counter_keys(check, at))
            if check.kind == "sliding":
                ttl_ms = check.window_seconds * 1000 + 1000
            else:
                bucket_end = (calendar_bucket(at, check.window_seconds) + 1) * check.window_seconds
                ttl_ms = max(1000, int((bucket_end - at) * 1000) + check.window_seconds * 1000)
            argv.extend(
                [
                    "s" if check.kind == "sliding" else "c",
                    check.window_seconds,
                    repr(float(check.increment)),
                    check.op or "",
                    repr(float(check.limit)) if check.limit is not None else "0",
                    ttl_ms,
                    check.any_of,
                ]
            )
        return keys, argv

    @staticmethod
    def _marker_ttl(checks: Sequence[CounterCheck]) -> int:
        return max((c.window_seconds for c in checks), default=0) * 2 + _MARKER_GRACE_SECONDS

    # -- CounterStore ----------------------------------------------------------------------

    async def reserve(self, checks: Sequence[CounterCheck], now: float) -> Reservation | Refusal:
        token = uuid.uuid4().hex
        checks = tuple(checks)
        if not checks:
            return Reservation(token=token, checks=checks, at=now)
        keys, argv = self._script_args(checks, now, token)
        result = await self._call(self._reserve, keys, argv)
        if int(result[0]) == 1:
            return Reservation(token=token, checks=checks, at=now)
        return Refusal(index=int(result[1]), projected=float(result[2]))

    async def commit(self, reservation: Reservation) -> None:
        if not reservation.checks:
            return
        try:
            await self._client.delete(self._marker(reservation.token))
        except (RedisError, OSError) as exc:
            raise self._error(exc) from None

    async def rollback(self, reservation: Reservation) -> None:
        if not reservation.checks:
            return
        keys, argv = self._script_args(reservation.checks, reservation.at, reservation.token)
        await self._call(self._rollback, keys, argv)

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        check = CounterCheck(key=key, kind=kind, window_seconds=window_seconds)
        counter, _ = self._counter_keys(check, now)
        if kind == "sliding":
            raw = await self._call(self._sliding_value, [counter], [f"({now - window_seconds!r}"])
        else:
            try:
                raw = await self._client.get(counter)
            except (RedisError, OSError) as exc:
                raise self._error(exc) from None
        return float(raw) if raw is not None else 0.0

    async def ping(self) -> None:
        """Fail early (as StateError) if Redis is unreachable, e.g. at proxy startup."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise self._error(exc) from None

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    # -- helpers ---------------------------------------------------------------------------

    async def _call(self, script: Any, keys: list[str], argv: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=argv)
        except (RedisError, OSError) as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> StateError:
        # Connection errors name host and port only; the redacted DSN adds no secret.
        return StateError(f"redis state store {self.display} failed: {type(exc).__name__}: {exc}")
