"""Streamable HTTP transports: the listener that serves MCP clients and the client of an upstream server."""
