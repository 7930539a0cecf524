"""Model configurations: one dataclass for both stages, with named presets."""

from dataclasses import dataclass, replace

from valle.config import DictConfig
from valle.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig(DictConfig):
    """Sizes of one VALL-E stage (AR or NAR); the two stages share the shape in the paper.

    `n_phonemes` comes from the phoneme vocabulary and `n_codebooks`/`codebook_size`
    from the codec, so a checkpoint's config says which vocabulary and codec it speaks.
    `group_size` > 1 is VALL-E 2's grouped code modeling: the AR stage reads and
    writes `group_size` frames per step (the NAR stage ignores it). `ar_levels` is how
    many codebook levels the AR stage predicts per frame (the paper: 1), through a depth
    decoder of `depth_layers` layers when more than one; the NAR stage predicts the rest.
    `scale_embeddings` multiplies the learned embeddings by sqrt(d_model), so that the
    fixed positions added to them do not drown them at the start of training.
    `history_levels` is how many of those levels of the frames so far the AR transformer
    reads (None: all `ar_levels`). With all of them, the next frame is well predicted from
    the last ones alone, and the AR learns to read the phonemes far later than the
    paper's layout does (measured: no monotonic attention head after 2,000 steps, where
    the paper's AR has one by 1,300); with 1 it reads what the paper's AR reads, and the
    depth decoder still predicts every level of the new frames. A stage with a
    `phoneme_pointer` is told where it is in the text, and there reading all levels wins
    (lower held-out loss on every level and fewer lost words: recipes/tournament.md).
    `languages` (VALL-E X): the languages whose learned embedding is added to each phoneme's,
    the prompt's phonemes in the prompt's language and the target's in the target's, so that
    a voice can speak a language its prompt did not; () (the default) takes no language.
    `history_noise`: the share of the AR's past frames replaced by random codes in training
    (never its targets), so that it cannot lean on copying its own past and must read the
    text, as Tacotron's prenet dropout makes its decoder attend; running on its own samples,
    an AR trained without it loses the text within a second or two (recipes/tournament.md).
    `text_dropout`: the share of training utterances whose phonemes the AR does not see, so
    that it also learns to continue audio without text, which classifier-free guidance on the
    text needs at inference (`SamplingConfig.guidance`).
    `self_feed`: the share of the AR's past frames replaced in training by the frames it
    predicts itself from the true past (a first pass without gradients; parallel scheduled
    sampling, Duckworth et al., 2019), so that it learns to go on from its own likely
    mistakes: given the true past it keeps the words, running on its own samples it loses
    them (recipes/tournament.md). Its targets stay the true frames.
    `onset_weight`: for an AR with a `phoneme_pointer`, how much more the frames where the
    alignment starts a new phoneme count in the loss than the others. There the text says
    which sound comes next, and the frames before cannot; a stage trained with equal weights
    gains little from its text even there (`text_gain_onsets`, recipes/tournament.md).
    The frame stage (`valle.model.frames`) reads `d_model`, `dropout`, `languages` and the codec's
    sizes, and: `n_layers` convolutions over the frames, `text_layers` over the phonemes, each of
    `kernel_size` steps, and `latent_dim`, the width of the codec's quantised latent it predicts;
    with `voice_attention`, every second frame layer also attends to the prompt's frames
    (`n_heads` heads) beside the one vector of the voice that modulates every layer; with
    `pitch`, every frame is told its pitch (in training from the corpus's pitch tracks, in
    synthesis predicted relative to the prompt's, `valle.pitch`); with `pitch_contour` as well, only
    its contour, carried through the unvoiced frames, so that the phonemes alone say where the voice
    is voiced. `code_loss` weighs a cross-entropy of the true codes of the first `code_loss_levels`
    levels against the codebook distances of the rendered latent, beside its regression.
    `accent_adversary` weighs a classifier of the training speakers' `accents` (their speech's
    variety: en-029, en-gb-x-rp, ...) that reads what the frames take from the prompt, beside the
    sound each frame makes, through a reversed gradient (domain-adversarial training, Ganin and Lempitsky, 2015): the voice path learns
    to carry no accent, so that a voice is rendered with the pronunciation its phonemes say.
    """

    kind = "model config"

    n_phonemes: int = 128
    n_codebooks: int = 8
    codebook_size: int = 1024
    d_model: int = 1024
    n_heads: int = 16
    n_layers: int = 12
    d_ff: int = 4096
    dropout: float = 0.1
    group_size: int = 1
    ar_levels: int = 1
    depth_layers: int = 1
    scale_embeddings: bool = False
    history_levels: int | None = None
    languages: tuple[str, ...] = ()
    history_noise: float = 0.0
    text_dropout: float = 0.0
    self_feed: float = 0.0
    phoneme_pointer: bool = False
    onset_weight: float = 1.0
    latent_dim: int = 128
    text_layers: int = 3
    kernel_size: int = 5
    voice_attention: bool = False
    pitch: bool = False
    pitch_contour: bool = False
    code_loss: float = 0.0
    code_loss_levels: int = 4
    accents: tuple[str, ...] = ()
    accent_adversary: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))  # a JSON list loads as a list
        object.__setattr__(self, "accents", tuple(self.accents))
        if len(set(self.languages)) != len(self.languages) or not all(isinstance(x, str) and x for x in self.languages):
            raise ConfigError(f"languages must be distinct language codes, got {list(self.languages)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.group_size < 1 or self.d_model % self.group_size:
            raise ConfigError(f"group_size ({self.group_size}) must be >= 1 and divide d_model ({self.d_model})")
        if self.n_codebooks < 2:
            raise ConfigError("VALL-E needs a codec with at least 2 codebooks (level 1 for AR, the rest for NAR)")
        if not 1 <= self.ar_levels < self.n_codebooks:
            raise ConfigError(f"ar_levels ({self.ar_levels}) must be at least 1 and leave the NAR stage a level "
                              f"(below n_codebooks = {self.n_codebooks})")
        if self.history_levels is not None and not 1 <= self.history_levels <= self.ar_levels:
            raise ConfigError(f"history_levels ({self.history_levels}) must be between 1 and ar_levels ({self.ar_levels}), "
                              "or null for all")
        if self.depth_layers < 1:
            raise ConfigError(f"depth_layers must be >= 1, got {self.depth_layers}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.history_noise < 1 or not 0 <= self.text_dropout < 1:
            raise ConfigError(f"history_noise and text_dropout must be in [0, 1), got {self.history_noise}, "
                              f"{self.text_dropout}")
        if not 0 <= self.self_feed <= 1:
            raise ConfigError(f"self_feed must be in [0, 1], got {self.self_feed}")
        if self.latent_dim < 1 or self.text_layers < 1 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"latent_dim and text_layers must be >= 1 and kernel_size odd, got {self.latent_dim}, "
                              f"{self.text_layers}, {self.kernel_size}")
        if self.onset_weight <= 0 or (self.onset_weight != 1.0 and not self.phoneme_pointer):
            raise ConfigError(f"onset_weight must be > 0, and differ from 1 only with phoneme_pointer (it reads the "
                              f"alignment), got {self.onset_weight}")
        if self.code_loss < 0 or not 1 <= self.code_loss_levels <= self.n_codebooks:
            raise ConfigError(f"code_loss must be >= 0 and code_loss_levels within 1..n_codebooks ({self.n_codebooks}), "
                              f"got {self.code_loss} and {self.code_loss_levels}")
        if self.accent_adversary < 0 or (self.accent_adversary > 0) != (len(self.accents) >= 2):
            raise ConfigError(f"accent_adversary ({self.accent_adversary}) must be >= 0, and above 0 exactly when "
                              f"there are accents to tell apart (at least 2; got {list(self.accents)}): give the "
                              "training config `accents`, a file of each speaker's accent")
        if self.pitch_contour and not self.pitch:
            raise ConfigError("pitch_contour says how the pitch is told to the frames: it needs pitch")

PRESETS: dict[str, ModelConfig] = {
    # The paper: 12 layers, 16 heads, 1024 wide, FFN 4096, dropout 0.1 (per stage).
    "paper": ModelConfig(),
    # Trains on a laptop CPU in hours on the synthetic corpus.
    "small": ModelConfig(d_model=256, n_heads=4, n_layers=6, d_ff=1024, dropout=0.1),
    # For tests and smoke runs.
    "tiny": ModelConfig(d_model=64, n_heads=2, n_layers=2, d_ff=128, dropout=0.0),
}


def preset(name: str, **overrides: object) -> ModelConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
