"""What `intercept run` was told, checked together: `RunOptions`, its HTTP sides and listener limits.

Plain data and validation, callable without click: `HttpSides.from_cli` raises ValueError naming
the conflict and its fix, which the command line shows as a usage error. Also the exit statuses
`intercept run` uses besides the MCP server's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from intercept.pinning import OnDrift
from intercept.protocol.mcp_headers import parse_header_option
from intercept.state import StateOptions
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES
from intercept.transport.http.client import display_url
from intercept.transport.http.edge import parse_listen
from intercept.transport.http.limits import ListenerLimits, default_buffered_bytes
from intercept.transport.stdio import CHILD_EXIT_GRACE_SECONDS

ApprovalMode = Literal["auto", "cli"]
"""How `require_approval` calls are put to a human (`intercept run --approvals`)."""

EXIT_INVALID = 1
"""An invalid policy, a policy that cannot be watched, a store or audit log that cannot be opened."""
EXIT_USAGE = 2
EXIT_CANNOT_START = 127
"""The MCP server command cannot be started."""


@dataclass(frozen=True)
class HttpSides:
    """The HTTP-related `intercept run` options."""

    upstream: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    listen: str | None = None
    client_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    limits: ListenerLimits = field(default_factory=ListenerLimits)

    @property
    def active(self) -> bool:
        return self.upstream is not None or self.listen is not None

    @classmethod
    def from_cli(
        cls,
        *,
        has_command: bool,
        upstream: str | None,
        headers: tuple[str, ...],
        listen: str | None,
        client_token: str | None,
        allowed_hosts: tuple[str, ...],
        allowed_origins: tuple[str, ...],
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        **limits: float | None,
    ) -> HttpSides:
        """Check the transport options together; ValueError naming the conflict and its fix.

        `limits`: the listener's `ListenerLimits` fields given on the command line (None: default)."""
        if upstream is None and not has_command:
            raise ValueError("give the MCP server command after `--`, or --upstream URL")
        if upstream is not None and has_command:
            raise ValueError("give either --upstream URL or a server command after `--`, not both")
        if upstream is not None and not upstream.lower().startswith(("http://", "https://")):
            raise ValueError(f"--upstream must be an http:// or https:// URL (got {display_url(upstream)!r})")
        if headers and upstream is None:
            raise ValueError("--header applies to --upstream requests; add --upstream URL")
        if listen is None and (client_token or allowed_hosts or allowed_origins):
            raise ValueError("--client-token, --allowed-host and --allowed-origin need --listen HOST:PORT")
        given = {name: value for name, value in limits.items() if value is not None}
        if listen is None and given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{options} need --listen HOST:PORT")
        buffered = given.setdefault("max_buffered_bytes", default_buffered_bytes(max_message_bytes))
        if buffered < max_message_bytes:
            raise ValueError(
                f"--max-buffered-bytes {buffered} is less than --max-message-bytes {max_message_bytes}: "
                "a message of the largest size could never be received; raise it"
            )
        if listen is not None:
            parse_listen(listen)
        return cls(
            upstream=upstream,
            headers=tuple(parse_header_option(h) for h in headers),
            listen=listen,
            client_token=client_token,
            allowed_hosts=allowed_hosts,
            allowed_origins=allowed_origins,
            limits=ListenerLimits(**given),  # type: ignore[arg-type]
        )

    def upstream_display(self, command: list[str]) -> str:
        """How the audit log names the upstream: its URL without credentials, or the command's name."""
        return display_url(self.upstream) if self.upstream else Path(command[0]).name


@dataclass
class RunOptions:
    """Everything `intercept run` was told. Transports added later add fields here."""

    config: Path
    command: list[str]
    state: StateOptions = field(default_factory=StateOptions)
    fail_open: bool = False
    audit_log: Path | None = None
    audit: bool = True
    watch: bool = True
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    http: HttpSides = field(default_factory=HttpSides)
    exit_grace: float = CHILD_EXIT_GRACE_SECONDS
    """Seconds the server gets to exit after its input closes, and again after SIGTERM."""
    shadow: bool = False
    """`--shadow`: forward every call, record what the policy would have denied (intercept.shadow)."""
    approvals: ApprovalMode = "auto"
    on_drift: OnDrift = "deny"
    """`--on-drift`: quarantine pinned tools whose definition changed (deny), or log and allow (warn)."""
    """`--approvals`: ask the client's user when it can elicit (auto), or always hold calls (cli)."""
