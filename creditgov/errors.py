"""The one error family: what went wrong decides the exit code, and nothing else does.

Every error creditgov raises on purpose is a `CreditgovError`; its class says which of
CLI.md's exit codes it means (`exit_code`), and `creditgov.cli.main` maps classes to
codes in one place. Modules raise the narrowest subclass that says what happened
(`DataError`, `GovernanceError` …) so a caller can catch that, or the family's four
bases when only the outcome matters:

* `BadInput` (exit 2): a config, table, argument or address the user can fix and rerun;
* `Refused` (exit 3): a governance rule said no;
* `Breach` (exit 4): drift or a gate breached where the caller asked to fail on it;
* `CreditgovError` itself (exit 1): a safety stop that is nobody's typo (a PII leak).

This module imports nothing, so every package may import it — the one exception to
"the stage packages never import creditgov" (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BREACH",
    "EXIT_REFUSED",
    "EXIT_UNEXPECTED",
    "BadInput",
    "Breach",
    "CreditgovError",
    "Refused",
]

EXIT_UNEXPECTED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_BREACH = 1, 2, 3, 4


class CreditgovError(Exception):
    """An error creditgov raised on purpose; its message is one line saying what to do."""

    exit_code: int = EXIT_UNEXPECTED


class BadInput(CreditgovError, ValueError):
    """Input the user can fix: the message names the file, key or column and the fix."""

    exit_code = EXIT_BAD_INPUT


class Refused(CreditgovError):
    """A governance rule refused the action; the message says which rule and why."""

    exit_code = EXIT_REFUSED


class Breach(CreditgovError):
    """Drift or a gate breached, and the caller asked to fail on it."""

    exit_code = EXIT_BREACH
