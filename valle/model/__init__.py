"""The VALL-E stages: AR for the first codebook levels over time, NAR for the rest, and the frame stage."""

from valle.model.ar import ARModel
from valle.model.config import PRESETS, ModelConfig, preset
from valle.model.frames import FrameModel
from valle.model.nar import NARBatch, NARModel
from valle.model.stage import Stage, TrainedOn

__all__ = ["ARModel", "FrameModel", "NARModel", "NARBatch", "ModelConfig", "PRESETS", "preset", "Stage", "TrainedOn"]
