"""Entry point for `python -m intercept`."""

from intercept.cli import main

main()
