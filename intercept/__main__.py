"""Entry point for `python -m intercept`."""

from intercept.cli import main

# Usage lines then read `intercept ...`, the same as the console script's.
main(prog_name="intercept")
