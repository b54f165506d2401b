"""Tool pinning at run time: does each pinned tool's listed definition still match its pin?

One `PinGuard` per client session (it lives in the `Router`). The router hands it every tool of
every `tools/list` result; the guard says which to show, and remembers the definitions the upstream
listed in answer to a `tools/list` (the client's or the proxy's own) until the upstream announces
`notifications/tools/list_changed`. A call to a pinned tool is then checked against the remembered
definition's hash, computed once per listing, never per call. A pinned tool with no remembered
definition is unverified: the router lists the upstream's tools itself first, and if the tool is
still unknown (not listed, or listing failed) the call is denied: the guard fails closed.

The proxy only has the pin, a hash, so it cannot say what changed relative to the pinned
definition. What it can say honestly: when a definition that matched the pin was seen earlier in
the session, the fields (name, description, inputSchema, annotations) that differ from that one;
otherwise only that the definition differs from the pin, with the current definition's per-field
hashes so they can be compared with a reviewed copy. docs/PROXY.md ("Tool pinning").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from intercept.engine import Denial
from intercept.util.tooldef import DefinitionError, definition_hash, field_hashes

log = logging.getLogger("intercept.pinning")

OnDrift = Literal["deny", "warn"]
"""`intercept run --on-drift`: quarantine drifted pinned tools (deny), or log and allow them (warn)."""

PIN_RULE = "pin"
DRIFTED = Denial(PIN_RULE, "tool definition changed since it was pinned")
UNVERIFIED = Denial(PIN_RULE, "tool definition could not be verified against its pin")
UNHASHABLE = "unhashable"
"""The `current` hash of a definition that has no canonical form (it can never match a pin)."""


class DriftSink(Protocol):
    """Where drift is recorded (`intercept.audit.AuditLog.pin_drift`)."""

    def pin_drift(self, fields: Mapping[str, Any]) -> None:
        """`fields`: tool, action, pinned, current, changed, detail, current_fields (docs/PROXY.md)."""


class PinGuard:
    """The pinned tools' verification state for one client session."""

    def __init__(self, on_drift: OnDrift = "deny", audit: DriftSink | None = None) -> None:
        self.on_drift = on_drift
        self._audit = audit
        self._listed: dict[str, Mapping[str, Any]] = {}
        self._hashes: dict[str, str] = {}
        # Field hashes of the first definition per (tool, pin) that matched the pin this session.
        self._matched: dict[tuple[str, str], dict[str, str]] = {}
        self._reported: set[tuple[str, str, str]] = set()

    def forget(self) -> None:
        """The upstream's tools changed: nothing listed so far is verified any more."""
        self._listed.clear()
        self._hashes.clear()

    def known(self, tool: str) -> bool:
        return tool in self._listed

    def shown(self, tool: Mapping[str, Any], name: str, pin: str | None, learn: bool) -> bool:
        """Whether a listed tool stays in the listing; `learn`: the listing answers a `tools/list`."""
        if learn:
            self._listed[name] = tool
            self._hashes.pop(name, None)
        if pin is None:
            return True
        current = self._hash(name) if learn else _hash(tool)
        if current == pin:
            if learn:
                self._remember(name, pin)
            return True
        if learn:
            self._drifted(name, pin, current)
        return self.on_drift == "warn"

    def check(self, name: str, pin: str) -> Denial | None:
        """The denial for a call to a pinned tool, or None; under `--on-drift warn` always None (logged)."""
        if name not in self._listed:
            if self.on_drift == "warn":
                log.warning("pinned tool %r could not be verified; allowed (--on-drift warn)", name)
                return None
            return UNVERIFIED
        current = self._hash(name)
        if current == pin:
            self._remember(name, pin)
            return None
        self._drifted(name, pin, current)
        if self.on_drift == "warn":
            log.warning("pinned tool %r changed since it was pinned; allowed (--on-drift warn)", name)
            return None
        return DRIFTED

    def _hash(self, name: str) -> str:
        current = self._hashes.get(name)
        if current is None:
            current = self._hashes[name] = _hash(self._listed[name])
        return current

    def _drifted(self, name: str, pin: str, current: str) -> None:
        """Report a drifted definition once per (tool, pin, definition) in the session."""
        key = (name, pin, current)
        if key in self._reported:
            return
        self._reported.add(key)
        tool = self._listed[name]
        fields = _fields(tool)
        earlier = self._matched.get((name, pin))
        if earlier is not None and fields:
            changed = [field for field, value in fields.items() if earlier.get(field) != value]
            detail = "compared with the definition that matched the pin earlier in this session"
        else:
            changed = []
            detail = "the definition differs from the pin; no matching definition was seen in this session"
        action = "allowed" if self.on_drift == "warn" else "quarantined"
        log.warning(
            "pinned tool %r: definition changed since it was pinned (%s); %s",
            name,
            ", ".join(changed) or "fields unknown",
            action,
        )
        if self._audit is not None:
            self._audit.pin_drift(
                {
                    "tool": name,
                    "action": action,
                    "pinned": pin,
                    "current": current,
                    "changed": changed,
                    "detail": detail,
                    "current_fields": fields,
                }
            )

    def _remember(self, name: str, pin: str) -> None:
        """Keep the fields of the first definition that matched `pin`, to name what changes later."""
        if (name, pin) not in self._matched:
            self._matched[(name, pin)] = _fields(self._listed[name])


def _hash(tool: Mapping[str, Any]) -> str:
    try:
        return definition_hash(tool)
    except DefinitionError:
        return UNHASHABLE


def _fields(tool: Mapping[str, Any]) -> dict[str, str]:
    try:
        return field_hashes(tool)
    except DefinitionError:
        return {}
