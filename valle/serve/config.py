"""What a server allows: how much work at once, and how large a request may be."""

from dataclasses import dataclass
from pathlib import Path

from valle.config import DictConfig
from valle.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig(DictConfig):
    kind = "server config"

    model: str = "default"  # the bundled model's name or a model folder
    data_dir: Path = Path("valle-data")  # saved voices live here, and nowhere else
    device: str = "cpu"
    dtype: str = "auto"  # of the AR and NAR weights: bfloat16 (auto: where the processor computes it) halves each step's reads
    max_concurrent: int = 1  # syntheses running at once (each uses every core it is given)
    max_queue: int = 8  # requests waiting for a slot; beyond that: 503 with Retry-After
    timeout_seconds: float = 120.0  # per synthesis, queueing included
    max_text_chars: int = 1000
    max_upload_bytes: int = 10 * 2**20
    max_prompt_seconds: float = 30.0
    retry_after_seconds: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.max_concurrent < 1 or self.max_queue < 0:
            raise ConfigError("max_concurrent must be >= 1 and max_queue >= 0")
        if min(self.timeout_seconds, self.max_text_chars, self.max_upload_bytes, self.max_prompt_seconds) <= 0:
            raise ConfigError("timeout_seconds, max_text_chars, max_upload_bytes and max_prompt_seconds must be > 0")
