"""`intercept run` as a running proxy: its options, the one place it is assembled, hot reload.

* `options`: what `intercept run` was told (`RunOptions`, `HttpSides`), checked together;
* `run`: builds and runs the proxy from a `RunOptions` for every transport combination;
* `logs`: where the proxy's diagnostics go;
* `reload`: the policy watch that swaps in a new engine after a completed write.

The click layer (`intercept.commands.run_cmds`) only turns arguments into a `RunOptions`.
"""
