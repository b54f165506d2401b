"""Discover a live MCP server's tools with the official MCP SDK client (stdio child or Streamable HTTP)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import anyio
import httpx2
from mcp import types as mcp_types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MAX_PAGES = 1000
"""A server that keeps handing out fresh cursors past this many pages is broken or hostile."""

MAX_TOOLS = 5000

STDERR_TAIL_LINES = 20

PASSTHROUGH_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_NATIVE_TLS",
    "UV_CACHE_DIR",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "npm_config_cache",
)
"""Package-manager plumbing (certificates, proxies, mirrors) that `npx` and `uvx` need to install the
server on machines behind a TLS-inspecting proxy; the SDK's small default environment leaves it out.
Never recorded in the registry."""


def terminal_safe(text: str) -> str:
    """Server text made safe to print: control and format characters (ANSI escapes, bidi overrides)
    are shown as \\uXXXX instead of acting on the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" for ch in text)


class ScanError(Exception):
    """A scan that could not finish; `stderr_tail` holds the last lines the server wrote, if any."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        self.message = message
        self.stderr_tail = stderr_tail
        super().__init__(self.render())

    def render(self) -> str:
        message = terminal_safe(self.message)
        if not self.stderr_tail:
            return message
        indented = "\n".join(f"  | {terminal_safe(line)}" for line in self.stderr_tail.splitlines())
        return f"{message}\nlast lines the server wrote to stderr:\n{indented}"


@dataclass(frozen=True, slots=True)
class ScannedTool:
    """One tool exactly as the server listed it (annotations keep their wire names)."""

    name: str
    title: str | None
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScanResult:
    tools: list[ScannedTool]
    server_name: str | None
    server_version: str | None
    protocol_version: str | None
    obtained_at: datetime
    command: list[str] = field(default_factory=list)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class StdioTarget:
    """A server started as a child process. `env` is added to the SDK's small inherited set."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class HttpTarget:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


Target = StdioTarget | HttpTarget


def scan(target: Target, timeout: float = 60.0) -> ScanResult:
    """Start or connect to the server, initialize, and page through tools/list. Raises ScanError."""
    return anyio.run(scan_async, target, timeout)


async def scan_async(target: Target, timeout: float = 60.0) -> ScanResult:
    if isinstance(target, StdioTarget):
        return await _scan_stdio(target, timeout)
    return await _scan_http(target, timeout)


async def _scan_stdio(target: StdioTarget, timeout: float) -> ScanResult:
    if not target.command:
        raise ScanError("no server command given; put it after `--`, e.g. `-- npx -y <package>`")
    program = target.command[0]
    if os.sep not in program and shutil.which(program) is None:
        raise ScanError(f"cannot start the server: '{program}' is not on PATH")
    env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
    env.update(target.env)
    params = StdioServerParameters(command=program, args=target.command[1:], env=env, cwd=target.cwd)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout):
                async with stdio_client(params, errlog=errlog) as (read, write):
                    result = await _list_all(read, write)
        except TimeoutError:
            raise ScanError(
                f"the server did not list its tools within {timeout:g}s (--timeout)", _tail(errlog)
            ) from None
        except ScanError as exc:
            raise ScanError(exc.message, _tail(errlog)) from None
        except OSError as exc:
            raise ScanError(f"cannot start the server '{program}': {exc.strerror or exc}") from None
        except Exception as exc:
            raise ScanError(
                f"the server failed before listing its tools: {_describe(exc)}", _tail(errlog)
            ) from None
    return ScanResult(
        result.tools,
        result.server_name,
        result.server_version,
        result.protocol_version,
        result.obtained_at,
        command=list(target.command),
    )


async def _scan_http(target: HttpTarget, timeout: float) -> ScanResult:
    if not target.url.startswith(("http://", "https://")):
        raise ScanError(f"--upstream {target.url!r} is not an http(s) URL")
    client = create_mcp_http_client(headers=dict(target.headers), timeout=httpx2.Timeout(timeout))
    try:
        with anyio.fail_after(timeout):
            async with client, streamable_http_client(target.url, http_client=client) as (read, write):
                result = await _list_all(read, write)
    except TimeoutError:
        raise ScanError(f"{target.url} did not list its tools within {timeout:g}s (--timeout)") from None
    except ScanError:
        raise
    except Exception as exc:
        raise ScanError(f"cannot scan {target.url}: {_describe(exc)}") from None
    return ScanResult(
        result.tools,
        result.server_name,
        result.server_version,
        result.protocol_version,
        result.obtained_at,
        url=target.url,
    )


async def _list_all(read: Any, write: Any) -> ScanResult:
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools: list[ScannedTool] = []
        seen_cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            page = await session.list_tools(params=params)
            tools.extend(_convert(t) for t in page.tools)
            if len(tools) > MAX_TOOLS:
                raise ScanError(f"the server listed more than {MAX_TOOLS} tools; refusing to record them")
            cursor = page.next_cursor
            if cursor is None:
                break
            if cursor in seen_cursors:
                raise ScanError("tools/list returned a cursor it had already returned; the server loops")
            seen_cursors.add(cursor)
        else:
            raise ScanError(f"tools/list still had more pages after {MAX_PAGES}; giving up")
    return ScanResult(
        tools,
        init.server_info.name,
        init.server_info.version,
        init.protocol_version,
        datetime.now(UTC).replace(microsecond=0),
    )


def _convert(tool: mcp_types.Tool) -> ScannedTool:
    annotations: dict[str, Any] = {}
    if tool.annotations is not None:
        annotations = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
    return ScannedTool(
        name=tool.name,
        title=tool.title,
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
        annotations=annotations,
    )


def _tail(errlog: IO[str], lines: int = STDERR_TAIL_LINES) -> str:
    try:
        errlog.flush()
        errlog.seek(0)
        text = errlog.read()
    except (OSError, ValueError):
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(line[:300] for line in kept)


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping task-group groups to their first real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
