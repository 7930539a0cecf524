"""The two VALL-E stages: AR for codebook level 1, NAR for levels 2..K."""

from valle.model.ar import ARModel
from valle.model.config import PRESETS, ModelConfig, preset
from valle.model.nar import NARBatch, NARModel
from valle.model.stage import Stage, TrainedOn

__all__ = ["ARModel", "NARModel", "NARBatch", "ModelConfig", "PRESETS", "preset", "Stage", "TrainedOn"]
