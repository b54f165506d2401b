"""Intercept: an MCP policy language, its enforcement proxy, and the CLI that drives both."""

__version__ = "0.1.0"
