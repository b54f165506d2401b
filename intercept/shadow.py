"""`intercept run --shadow`: decide every call as the policy would, apply nothing, count nothing.

`shadow_decide` is `Engine.decide` with the store only read. The decision is always an admission
without a reservation; what enforcing would have done is in `would_deny`:

* the denial the policy would give (hide, default, a rule, a counter check), alone: the calls a
  shadow rule would change are those the policy admits, so on a call the policy denies anyway
  its shadow rules are not asked;
* otherwise, the denials of the call's `mode: shadow` rules, as under enforcement.

Counter checks are compared with the counters' current values plus what this call would add,
as `reserve` would, but nothing is reserved or committed. So a limit is recorded as
would-deny only when the store already holds enough (an enforcing proxy sharing it, or counts
left from an earlier enforcing run); the calls of a shadow proxy never bring one closer.
"""

from __future__ import annotations

import logging

from intercept.engine import STATE_DENIAL, Admission, Denial, Engine, SchemaLookup, ToolCall, explain_refusal
from intercept.state.base import CounterStore, StateError
from intercept.state.readonly import would_refuse

log = logging.getLogger("intercept.shadow")

SHADOW_WARNING = (
    "shadow mode: every call is forwarded and no counter moves; what the policy would have denied "
    "is recorded in the audit log (would_deny), and limits are checked against the counters' "
    "current values only"
)


async def shadow_decide(
    engine: Engine,
    call: ToolCall,
    store: CounterStore,
    now: float,
    schemas: SchemaLookup,
    fail_open: bool = False,
) -> Admission:
    """Admit the call; `would_deny` holds what enforcing the policy would have refused it with."""
    checked = engine.check(call, schemas)
    if isinstance(checked, Denial):
        return Admission(None, would_deny=(checked,))
    checks = [check for check, _ in checked]
    if checks:
        try:
            refusal = await would_refuse(store, checks, now)
        except StateError as exc:
            log.warning("counter store failed (%s); recorded as it would be enforced", exc)
            return (
                Admission(None, "state-fail-open")
                if fail_open
                else Admission(None, would_deny=(STATE_DENIAL,))
            )
        if refusal is not None:
            return Admission(None, would_deny=(explain_refusal(checked, refusal),))
    return Admission(None, would_deny=await engine.shadow_verdicts(call, store, now, schemas, checks))
