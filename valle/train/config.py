"""What a training run is: the stage, the model preset and the optimisation settings."""

from dataclasses import dataclass, field

from valle.config import DictConfig
from valle.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    kind = "training config"

    stage: str = "ar"  # "ar", "nar" or "frames" (valle.model.frames)
    preset: str = "small"  # see valle.model.config.PRESETS
    model: dict = field(default_factory=dict)  # overrides of the preset's fields
    max_tokens: int = 6000  # per batch: (longest phonemes + longest frames) x utterances
    max_frames: int | None = None  # leave out longer utterances
    steps: int = 10000
    grad_accumulation: int = 1
    learning_rate: float = 5e-4
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    precision: str = "auto"  # "auto": bf16 on CUDA, fp32 on CPU; or "bf16", "fp16", "fp32"
    nar_prompt_seconds: float = 3.0  # the longest prompt slice the NAR and frame stages are given
    # Where the frame stage's voice prompt is cut from: "same", the utterance it learns to speak; "other", another
    # utterance of its speaker (valle.train.batching.OtherUtterances), as in synthesis; held out, the same.
    voice_prompt: str = "same"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    valid_every: int = 0  # steps between held-out scores (with `--valid`; 0: only at the end)
    valid_utterances: int = 100  # held-out utterances scored, spread over the held-out corpus
    # A trained stage folder (RUN/model) to start from: its tensors whose names and shapes match
    # this model's are copied in, the rest start fresh (e.g. an AR that reads the text in order,
    # given a new depth decoder).
    init: str | None = None
    # The parts of the model that learn, by the first words of their weights' names ("pitch_embedding",
    # "frame_blocks.5"); empty: all. The rest keep the `init` weights: new parts learn beside a stage that keeps what it knew.
    trained: list[str] = field(default_factory=list)
    # VALL-E X: the model takes each phoneme's language, and knows the training corpus's languages.
    language_input: bool = False
    # For a frame stage's `accent_adversary`: a JSON file naming each training speaker's accent, {"speaker": "en-029"}
    # (speakers as the token folders name them); the speakers it leaves out carry none.
    accents: str | None = None
    # A trained frame stage (RUN/model) that teaches the utterances of the `teacher_data` folders (some of `--data`,
    # as given there): they learn its latents at their true alignment and its durations in place of their recordings'
    # (`FrameModel.teach`). A student keeps the teacher's way with the voices of those folders and learns the rest's.
    teacher: str | None = None
    teacher_data: list[str] = field(default_factory=list)
    # Decay of an exponential moving average of the weights, kept beside them and saved as RUN/ema
    # at every checkpoint (0: none). An average over the last ~1 / (1 - ema) steps varies less from
    # checkpoint to checkpoint than the weights of one step.
    ema: float = 0.0
    # Steps between kept copies of the stage (RUN/kept/step-NNNNNN: the average where `ema` keeps one, else the
    # weights), written with the checkpoint of such a step (0: none): a long run's curve can be scored after it ends.
    keep_every: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1) (0: no average of the weights), got {self.ema}")
        if self.keep_every < 0 or self.keep_every and self.keep_every % max(1, self.checkpoint_every):
            raise ConfigError(f"keep_every must be 0 (no copies) or a multiple of checkpoint_every ({self.checkpoint_every}): "
                              f"a copy is kept with a checkpoint; got {self.keep_every}")
        if self.stage not in ("ar", "nar", "frames"):
            raise ConfigError(f"stage must be 'ar', 'nar' or 'frames', got {self.stage!r}")
        if self.voice_prompt not in ("same", "other"):
            raise ConfigError(f"voice_prompt must be 'same' or 'other', got {self.voice_prompt!r}")
        if self.voice_prompt == "other" and self.stage != "frames":
            raise ConfigError("voice_prompt 'other' is for the frame stage; the NAR's prompt is the start of its utterance")
        if self.accents is not None and self.stage != "frames":
            raise ConfigError("accents are for the frame stage's accent_adversary; leave them out for the AR and NAR")
        if (self.teacher is None) != (not self.teacher_data):
            raise ConfigError("a teacher teaches the folders of teacher_data: give both (a stage folder and some of the "
                              "--data folders), or neither")
        if self.teacher is not None and self.stage != "frames":
            raise ConfigError("a teacher is a frame stage that teaches a frame stage; leave it out for the AR and NAR")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16, fp16 or fp32, got {self.precision!r}")
        if self.trained and self.init is None:
            raise ConfigError("trained names the parts that learn from an `init` stage; give init, or leave trained empty")
        if self.steps < 1 or self.grad_accumulation < 1 or self.max_tokens < 1:
            raise ConfigError("steps, grad_accumulation and max_tokens must be >= 1")
