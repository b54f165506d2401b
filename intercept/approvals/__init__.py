"""Human approval of single tool calls (`action: require_approval`).

`model` binds an approval to one call (tool, canonical-argument hash, policy version, session,
expiry); `store` and its backends (`sqlite_store`, `redis_store`) keep approvals where
`intercept approvals` can reach them; `elicit` builds the question put to an MCP client;
`coordinator` holds a call until a human decides or its timeout passes.
"""
