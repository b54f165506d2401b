"""The wire format shared by the router and every transport: JSON-RPC and the MCP HTTP headers.

This package imports nothing else from `intercept`, so transports and the router may both depend on it.
"""
