"""Errors a user can act on.

Every failure caused by input, configuration or environment is raised as a
`ValleError` subclass whose message names the problem and the fix. The CLI prints
these without a traceback; anything else is a bug in valle.
"""


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
