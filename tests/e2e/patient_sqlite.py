"""`intercept` whose SQLite store waits for a locked database far longer than any test runs.

A call waiting for the lock then finishes only when the test releases it, never because the
busy timeout ran out first on a slow machine. Usage: python patient_sqlite.py run ... (as `intercept`).
"""

from intercept.cli import main
from intercept.state import sqlite

sqlite.BUSY_TIMEOUT_MS = 600_000
main()
