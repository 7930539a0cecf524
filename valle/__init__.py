"""valle: zero-shot text-to-speech by neural codec language modeling (VALL-E)."""

from valle.errors import ValleError

__version__ = "0.1.0"

__all__ = ["ValleError", "__version__"]
