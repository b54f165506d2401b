"""What an approval is bound to: one call's tool, canonical arguments, policy version and session.

Canonical JSON (docs/PROXY.md, "Human approval"): object keys sorted by Unicode code point, no
whitespace (`,` and `:` separators), non-ASCII characters written as themselves, the whole text
encoded as UTF-8 (a lone surrogate, which JSON text may carry, is encoded as its own three
bytes). The argument hash is the SHA-256 of those bytes, in hex. The policy version is the
SHA-256 of the loaded policy in the same canonical form, so any change to the rules, reloaded,
voids approvals asked for under the old ones.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from intercept.policy import Policy

Status = Literal["pending", "granted", "denied", "used", "expired"]
Decision = Literal["granted", "denied"]
STATUSES: tuple[Status, ...] = ("pending", "granted", "denied", "used", "expired")
RETAIN_SECONDS = 86400
"""Decided or expired approvals stay listed in the store this long after they expire, then go."""

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """`value` as canonical JSON bytes (see the module docstring)."""
    return _encoder.encode(value).encode("utf-8", "surrogatepass")


def arguments_hash(arguments: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(arguments))).hexdigest()


def policy_version(policy: Policy) -> str:
    data = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(canonical_json(data)).hexdigest()[:16]


def new_approval_id() -> str:
    """Short enough to type, random enough that no two held calls share one."""
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One held call awaiting (or past) a human decision."""

    id: str
    tool: str
    args_hash: str
    policy_version: str
    session: str
    rule: str
    server: str
    summary: str
    """The arguments as escaped, truncated JSON, for `intercept approvals list` (see `elicit`)."""
    created: float
    expires: float
    status: Status = "pending"

    def binds(self, other: ApprovalRequest) -> bool:
        """True if `other` is an approval for exactly this call."""
        return (self.tool, self.args_hash, self.policy_version, self.session) == (
            other.tool,
            other.args_hash,
            other.policy_version,
            other.session,
        )

    def with_status(self, status: Status) -> ApprovalRequest:
        return replace(self, status=status)
