"""One module per page kind; `context` holds what they share."""
