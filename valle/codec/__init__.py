"""Neural audio codecs: audio <-> a [K, T] matrix of discrete codes."""

from valle.codec.base import Codec, load_codec

__all__ = ["Codec", "load_codec"]
