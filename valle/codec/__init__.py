"""Neural audio codecs: audio <-> a [K, T] matrix of discrete codes."""

from valle.codec.base import Codec, load_codec
from valle.codec.record import CodecRecord

__all__ = ["Codec", "CodecRecord", "load_codec"]
