"""Click commands, one module per topic; `intercept.cli` registers them."""
