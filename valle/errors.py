"""Errors a user can act on.

Every failure caused by input, configuration or environment is raised as a
`ValleError` subclass whose message names the problem and the fix. The CLI prints
these without a traceback (`exit_status`); anything else is a bug in valle.
"""

import sys
from collections.abc import Callable


class ValleError(Exception):
    """Base class: the message says what went wrong and how to fix it."""


class AudioError(ValleError):
    """Audio that cannot be read or is unfit for its purpose (silent, too short, ...)."""


class TextError(ValleError):
    """Text that cannot be turned into phonemes (empty, nothing speakable, ...)."""


class CorpusError(ValleError):
    """A corpus folder that does not have the layout its reader expects."""


class ConfigError(ValleError):
    """A configuration value that is missing, of the wrong type or out of range."""


class DependencyError(ValleError):
    """A system program or optional package that a feature needs is not installed."""


def exit_status(command: Callable[[], int | None]) -> int:
    """Run a command for a shell: a `ValleError` becomes one line on standard error and status 2, Ctrl-C status 130."""
    try:
        return command() or 0
    except ValleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
