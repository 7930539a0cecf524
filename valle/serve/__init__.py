"""An HTTP API and a web page for voice cloning: `valle serve`."""

from valle.serve.app import create_app
from valle.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
