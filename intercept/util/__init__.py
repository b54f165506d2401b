"""Utilities shared by the proxy and the site generator: errors, safe YAML, atomic files.

This package imports nothing else from `intercept` or `generator`, so both may depend on it.
"""
