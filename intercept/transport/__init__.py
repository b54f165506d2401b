"""Transports: move framed JSON-RPC messages between the proxy and its peers; no policy here."""
