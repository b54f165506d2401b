"""`intercept run` with a shorter shutdown grace than the 5 s default, so tests of it run fast.

Usage: python run_proxy_with_grace.py SECONDS <intercept run options> -- <server command...>
"""

import dataclasses
import sys

from intercept.commands import run_cmds
from intercept.runtime import run as runtime

grace = float(sys.argv.pop(1))
run_proxy = runtime.run_proxy
runtime.run_proxy = lambda options: run_proxy(dataclasses.replace(options, exit_grace=grace))
run_cmds.run(prog_name="intercept run")
