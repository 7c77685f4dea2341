"""The `creditgov` command line: parse, call one function, print. No logic lives here.

Exit codes (CLI.md): 0 success, 2 bad input, 3 a governance rule refused, 4 drift or a
gate breached when asked to fail on it, 1 anything unexpected — mapped from the error
family in one place (`base.py`). `jobs.py` holds the commands that train, test and
score, `governance.py` those that approve and promote, `display.py` the tables.
Importing this package registers every command on `app`.
"""

# isort: off
# Registration order is the order `creditgov --help` lists: the job commands first.
from creditgov.cli import jobs
from creditgov.cli import governance
from creditgov.cli.base import app, main

# isort: on

__all__ = ["app", "governance", "jobs", "main"]
