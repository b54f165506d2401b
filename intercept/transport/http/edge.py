"""Who may reach the listener: the address it serves, and the Host, Origin and bearer-token checks.

Every request passes these before anything else is read:

* `Host` must name the listening address (or a loopback alias, or `--allowed-host`), and an
  `Origin`, when sent, must be a loopback or `--allowed-origin` origin: DNS rebinding defence;
* with `--client-token`, `Authorization: Bearer <token>` is required (compared in constant time).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from intercept.transport.http.asgi import Headers, Reply, error_reply


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> ListenAddress:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback); ValueError with a fix otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--listen {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    return ListenAddress(host, int(port_text))


class Edge:
    """The checks on who sends a request, configured once per listener."""

    def __init__(
        self,
        address: ListenAddress,
        client_token: str | None = None,
        allowed_hosts: tuple[str, ...] = (),
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        port = address.port
        hosts = {str(address), f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
        self._hosts = {h.lower() for h in (*hosts, *allowed_hosts)}
        self._origins = {o.lower().rstrip("/") for o in allowed_origins}
        self._token = client_token

    def refuse(self, headers: Headers) -> Reply | None:
        """The error a request gets for who sent it; None if it may go on."""
        host = headers.get("host", "").lower()
        if host not in self._hosts:
            return error_reply(
                421,
                "the Host header names an address not served here (DNS rebinding protection); "
                "serve it with --allowed-host HOST:PORT",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin):
            return error_reply(403, "Origin not allowed (DNS rebinding protection)")
        token = self._token
        if token is not None:
            supplied = headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return error_reply(
                    401, "missing or wrong bearer token", headers={"www-authenticate": "Bearer"}
                )
        return None

    def _origin_allowed(self, origin: str) -> bool:
        if origin.lower().rstrip("/") in self._origins:
            return True
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
