"""The errors a user can cause, and the exit codes they map to.

Exit codes: 0 success, 1 policy violations, 2 bad configuration or a tool failure the user must
fix (missing credentials, a gate that could not run). Tracebacks are for bugs. Every layer raises
these; only the CLI (runner/app/cli.py) turns them into an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_CONFIG = 2


class RunExit(SystemExit):
    """The exit code sagegate chose (0/1/2), as opposed to Hydra's own exit 1 on a config it
    cannot compose, which main.py turns into 2."""


class UserError(Exception):
    """Something the user must fix; printed as one line, never with a traceback."""

    exit_code = EXIT_BAD_CONFIG


class ConfigError(ValueError):
    """A user's configuration is invalid. The message names the key at fault."""

    exit_code = EXIT_BAD_CONFIG
