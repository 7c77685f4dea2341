"""`python -m creditgov` runs the CLI (used by the MLproject entry points)."""

from creditgov.cli import main

main()
