"""The frame stage: every frame's codes at once, rendered from the phoneme it speaks and the prompt's voice.

The AR stage, which must find each frame's phoneme for itself, reads its text too little to
keep the words once it runs on its own samples (recipes/tournament.md). This stage is told
them: a frame's input is its phoneme's state from a convolutional text encoder, and how far
into the phoneme and how far from its end the frame is (FastSpeech's length regulator). The
frames then pass a stack of convolutions, each modulated by a vector of the voice (FiLM),
pooled from the prompt's codes; the output is the codec's quantised latent of the frame (the
sum of its codebook vectors over all levels), learnt by regression, and the frame's codes are
that latent quantised again by the codec's own codebooks, level by level. On held-out voices,
given the true durations, its codes are recognised as well as the real ones after 25 CPU
minutes of training.

With `pitch` (ModelConfig), a frame is also told its pitch: in training its F0 from the corpus's
pitch tracks (`valle data pitch`), in synthesis a pitch head's prediction, relative to the
median pitch of the prompt, which `valle.pitch` measures on its recording. Without it, the
latent regressed for a frame is the average over every pitch the voice might take there,
and a voice rendered from such averages comes out an octave off, or with no pitch at all.
With `pitch_contour` as well, a frame is told only the contour, carried through the unvoiced
frames: a track's voicing, true in training and predicted (by the same head) in synthesis, also
says where each consonant starts and ends, which the frames then learn from their phonemes.

A latent regressed is an average, and averages vary less: a frame stage's latents spread over
time about a quarter less than real ones, the muffled voice of statistical parametric
synthesis. Synthesis gives each latent dimension back the spread over time it has in the
prompt (`variance`; global variance, as Toda and Tokuda restored it to HMM synthesis).

A rendering's latents also lie nearer the voices of training than the prompt's do, frame for frame.
When the prompt's words and their frames are known, `prompt_map` renders those words in the prompt's
voice and fits the affine map that takes that rendering nearest the prompt's real latents, held
toward the identity (the speaker adaptation of MLLR, fitted on 3 s); synthesis applies it to every
frame. Held strongly, it moves the timbre and keeps the words; held loosely, it learns the
prompt's accent too (recipes/tournament.md).
An affine map moves every frame alike. With `neighbours`, each frame is also moved by what the
prompt's real latents differ from the stage's mapped rendering of them at the few prompt frames
whose rendering lies nearest it (k-nearest-neighbour regression of the residual, as kNN-VC
matches frames to a reference): a local correction, learnt on 3 s as the map is, that keeps
more of a voice the stage has not heard, for some of its words.

A voice the stage has not heard comes out nearer the voices it has: read back by its own voice
encoder, a rendering lies between the prompt's voice and the voices of its training. With
`feedback`, synthesis renders twice: the second time in a voice vector moved past the prompt's
by that shortfall, as a singer corrects a note by the one heard.

A stage that reads the prompt's frames renders an unheard voice's accent too, as faithfully as its recordings have
it, and a listener (or a recogniser) may then hear fewer of the words than in the same voice without it. With
`accent_adversary`, a classifier learns to name each training speaker's accent from what its frames took of the voice
(the voice vector and the attention's reads) beside the sound each frame is making, and the stage learns, through a
reversed gradient, to take nothing that names it: the timbre comes from the prompt, the pronunciation from the phonemes.

A stage may be taught some voices by another (`teach`, then `forward`'s `taught`): their utterances learn the
teacher's latents at their true alignment and its durations, in place of their recordings'. A stage that copies a
voice's every detail copies an engine's accent as faithfully as its recordings have it; taught the engines' voices
by a stage that renders them less faithfully and more intelligibly, it may keep that way with them and still learn
every detail of the people's voices from their recordings.

How many frames each phoneme takes comes from a duration head on the same text states, also
modulated by the voice (log(1 + frames), by regression): `durations`, then `render`, is all of
synthesis. In training the frames' phonemes come from the corpus's alignments
(`valle data align`) and the durations are their counts. Those predicted for an unheard voice
keep too little of its speaking rate (held-out voices come out 0.65-1.17 times as long as
their real recordings); when the prompt's words are known, `prompt_pace` reads the rate off
the prompt itself: the frames it took against the frames this stage gives the same phonemes.
"""

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle.codec.rvq import residual_codes, squared_distances
from valle.errors import ConfigError
from valle.model.config import ModelConfig
from valle.model.layers import lengths_to_mask
from valle.model.stage import Stage
from valle.pitch import F0_RANGE

MAX_POSITION = 32  # frames into a phoneme (and left of it) told apart; longer phonemes share the last
PITCH_BINS = 64  # steps of log F0 over F0_RANGE told apart (0.6 semitones each); bin 0 is unvoiced
DEFAULT_PITCH = math.log2(150.0)  # the median log2 F0 assumed of a prompt with too little voiced speech to measure
PACE_RANGE = (0.5, 2.0)  # a prompt's pace trusted within these (a wrong transcript would give any)
NEIGHBOURS = 4  # prompt frames whose residual a frame takes (`PromptMap`); 1 takes words, 16 too little of the voice


@dataclass
class FrameOutput:
    loss: Tensor  # latent + duration + pitch + code_loss and accent_adversary (weighted)
    latent_loss: Tensor  # L1 + squared error of the scaled latent, per dimension, over the target frames
    duration_loss: Tensor  # squared error of log(1 + frames) over the phonemes
    pitch_loss: Tensor  # voicing cross-entropy + absolute error of log2 F0 in voiced frames (0 without `pitch`)
    code_loss: Tensor  # cross-entropy of the true codes per level, by codebook distance (0 without `code_loss`)
    accent_loss: Tensor  # the accent classifier's cross-entropy over the labelled frames (0 without `accent_adversary`)
    accent_hits: tuple[int, int]  # (labelled frames whose accent the classifier names, labelled frames)
    latent: Tensor  # [B, T, D]: the predicted latent (unscaled)
    durations: Tensor  # [B, P]: the predicted log(1 + frames)
    frame_counts: Tensor  # [B, P]: each phoneme's frames in the alignment (what `durations` learns, as log(1 + frames))


@dataclass
class Taught:
    """A teacher stage's rendering of some utterances of a batch (`FrameModel.teach`), learnt in their recordings' place."""

    latent: Tensor  # [B, T, D]: the teacher's latents at each utterance's true alignment
    durations: Tensor  # [B, P]: the teacher's log(1 + frames) of each phoneme
    rows: Tensor  # [B] bool: the utterances that learn these instead of their recordings


class Block(nn.Module):
    """A residual convolution over time, its input normalised and modulated by a condition vector (FiLM)."""

    def __init__(self, d: int, kernel: int, dropout: float, conditioned: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.convolution = nn.Conv1d(d, d, kernel, padding=kernel // 2)
        self.film = nn.Linear(d, 2 * d) if conditioned else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, valid: Tensor, condition: Tensor | None = None) -> Tensor:
        """`x` `[B, T, d]`, `valid` `[B, T, 1]` (padding is kept at zero), `condition` `[B, d]`."""
        h = self.norm(x)
        if self.film is not None:
            scale, shift = self.film(condition)[:, None].chunk(2, dim=-1)
            h = h * (1 + scale) + shift
        h = F.gelu(self.convolution((h * valid).transpose(1, 2))).transpose(1, 2)
        return x + self.dropout(h) * valid


@dataclass
class Voice:
    """The prompt as the stage reads it: one vector (mean and spread over time) and, for voice attention, its frames."""

    vector: Tensor  # [B, d]
    frames: Tensor  # [B, T_p, d]
    valid: Tensor  # [B, T_p] bool


class VoiceAttention(nn.Module):
    """Each frame attends to the prompt's encoded frames: the detail of a voice that its mean and spread lose.

    Its output starts at zero, so that a stage grown from one without it starts out computing what that one did.
    """

    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)
        self.key_value = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, valid: Tensor, voice: Voice) -> Tensor:
        """What the frames `x` `[B, T, d]` read from the prompt's frames, to be added to them."""
        batch, length, d = x.shape
        q = self.query(self.norm(x)).view(batch, length, self.n_heads, -1).transpose(1, 2)
        k, v = (t.view(batch, -1, self.n_heads, d // self.n_heads).transpose(1, 2)
                for t in self.key_value(voice.frames).chunk(2, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=voice.valid[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(batch, length, d)) * valid


class ReversedGradient(torch.autograd.Function):
    """The identity forward; backward, the gradient negated: what minimises a loss behind it maximises it before."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


def pitch_bins(f0: Tensor) -> Tensor:
    """F0 in Hz (0: unvoiced) -> ids: 0 unvoiced, 1..PITCH_BINS equal steps of log F0 over F0_RANGE."""
    low, high = math.log2(F0_RANGE[0]), math.log2(F0_RANGE[1])
    step = ((f0.float().clamp(min=1.0).log2() - low) * (PITCH_BINS / (high - low))).floor().clamp(0, PITCH_BINS - 1)
    return torch.where(f0 > 0, step.long() + 1, 0)


def pitch_contour(f0: Tensor) -> Tensor:
    """F0 tracks `[B, T]` (Hz, 0 unvoiced) with each unvoiced stretch filled in: log F0 straight from the voiced
    frame before it to the one after, held at the ends; a track with no voiced frame stays unvoiced."""
    contour = f0.float().clone()
    frames = torch.arange(f0.shape[1], device=f0.device)
    for row in contour:
        voiced = (row > 0).nonzero()[:, 0]
        if len(voiced) == 0:
            continue
        log_f0 = row[voiced].log2()
        after = torch.searchsorted(voiced, frames).clamp(max=len(voiced) - 1)  # the first voiced from t on (or the last)
        before = (after - (voiced[after] > frames).long()).clamp(min=0)  # the last voiced up to t (or the first)
        weight = ((frames - voiced[before]) / (voiced[after] - voiced[before]).clamp(min=1)).clamp(0, 1)
        row.copy_(torch.exp2(log_f0[before] + weight * (log_f0[after] - log_f0[before])))
    return contour


def pitch_level(f0: Tensor) -> float:
    """The median log2 F0 of the voiced frames of a track `[T]`, DEFAULT_PITCH where under a tenth of a second is voiced."""
    voiced = f0[f0 > 0]
    return float(voiced.float().log2().median()) if len(voiced) >= 5 else DEFAULT_PITCH


def quantize(latent: Tensor, codebooks: Tensor) -> Tensor:
    """`[..., D]` latents -> `[K, ...]` codes, as the codec's residual quantiser gives them (`codebooks` `[K, V, D]`)."""
    codes = residual_codes(latent.reshape(-1, latent.shape[-1]).float(), codebooks.float())
    return codes.view(len(codebooks), *latent.shape[:-1])


def frames_of(log_durations: Tensor, pace: float = 1.0) -> Tensor:
    """Whole frames from predicted log(1 + frames), spoken `pace` times as fast."""
    return ((log_durations.float().exp() - 1) / pace).round().clamp(min=0).long()


def frame_positions(path: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """For each frame of `path` `[B, T]` (its phoneme; `lengths` `[B]` valid frames): frames since its phoneme
    began and frames until it ends, each `[B, T]` and capped at MAX_POSITION - 1."""
    frames = torch.arange(path.shape[1], device=path.device)[None].expand_as(path)
    valid = frames < lengths[:, None]
    starts = torch.ones_like(valid)
    starts[:, 1:] = path[:, 1:] != path[:, :-1]
    ends = torch.ones_like(valid)
    ends[:, :-1] = (path[:, 1:] != path[:, :-1]) | ~valid[:, 1:]
    start_at = torch.where(starts, frames, torch.zeros_like(frames)).cummax(1).values
    end_at = torch.where(ends, frames, torch.full_like(frames, path.shape[1])).flip(1).cummin(1).values.flip(1)
    cap = MAX_POSITION - 1
    return (frames - start_at).clamp(max=cap) * valid, (end_at - frames).clamp(max=cap) * valid


def match_variance(latent: Tensor, reference: Tensor, strength: float = 1.0) -> Tensor:
    """`latent` `[T, D]` with each dimension's spread over time (its standard deviation about its mean) moved toward
    that of `reference` `[T_r, D]`, the prompt's real latents: `strength` 0 leaves it, 1 gives it the reference's."""
    mean = latent.mean(0)
    ratio = reference.float().std(0, correction=0) / latent.float().std(0, correction=0).clamp(min=1e-6)
    return mean + (latent - mean) * ratio.to(latent.dtype) ** strength


def fit_latent_map(rendered: Tensor, real: Tensor, ridge: float) -> tuple[Tensor, Tensor]:
    """The affine map (`weight` `[D, D]`, `bias` `[D]`) that takes `rendered` `[T, D]`, a stage's latents of the frames
    of `real` `[T, D]`, nearest `real` (`rendered @ weight + bias`, least squares), held toward the identity by `ridge`
    in units of the data's own weight (the rendered latents' mean variance, times T): 0 fits freely, more keeps the
    map nearer the identity. A few seconds of frames cannot fit D x D numbers freely."""
    rendered, real = rendered.float(), real.float()
    mean_rendered, mean_real = rendered.mean(0), real.mean(0)
    x, y = rendered - mean_rendered, real - mean_real
    scatter = x.T @ x
    identity = torch.eye(scatter.shape[0], device=scatter.device)
    held = ridge * scatter.diagonal().mean() * identity
    weight = torch.linalg.solve(scatter + held, x.T @ y + held)
    return weight, mean_real - mean_rendered @ weight


@dataclass(frozen=True)
class PromptMap:
    """What synthesis learns of a prompt's voice from its own words (`FrameModel.prompt_map`), applied to a rendering's
    latents `[T, D]` by calling it: the affine map (`fit_latent_map`), then, with `neighbours` > 0, that share of the
    mean residual (`real` minus `rendered`) at the NEIGHBOURS prompt frames whose `rendered` latent lies nearest."""

    weight: Tensor  # [D, D]
    bias: Tensor  # [D]
    rendered: Tensor  # [T_p, D] the stage's rendering of the prompt's frames, mapped
    real: Tensor  # [T_p, D] the prompt's own latents
    neighbours: float = 0.0

    def __call__(self, latent: Tensor) -> Tensor:
        latent = latent.float() @ self.weight + self.bias
        if not self.neighbours:
            return latent
        nearest = torch.cdist(latent, self.rendered).topk(min(NEIGHBOURS, len(self.rendered)), largest=False).indices
        return latent + self.neighbours * (self.real - self.rendered)[nearest].mean(1)


def voice_slices(codes: Tensor, code_lens: Tensor, max_frames: int, generator: torch.Generator | None = None,
                 pitch: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """A random slice of at most `max_frames` of each utterance `[B, K, T]` (`code_lens` `[B]`): its voice, given as a
    prompt in training. The utterance stays whole: its frames follow its phonemes in order. With the utterances'
    `pitch` `[B, T]`, also each slice's `pitch_level` `[B]`, else None."""
    lens = torch.minimum(code_lens, torch.tensor(max_frames, device=code_lens.device))
    slices = torch.zeros(codes.shape[0], codes.shape[1], int(lens.max()), dtype=codes.dtype, device=codes.device)
    levels = []
    for b, (length, size) in enumerate(zip(code_lens.tolist(), lens.tolist())):
        start = int(torch.randint(0, length - size + 1, (), generator=generator))
        slices[b, :, :size] = codes[b, :, start:start + size]
        if pitch is not None:
            levels.append(pitch_level(pitch[b, start:start + size]))
    return slices, lens, None if pitch is None else torch.tensor(levels, device=codes.device)


def path_of(durations: Tensor) -> Tensor:
    """`[T]`: the phoneme index of every frame, given each phoneme's `durations` `[P]` in frames."""
    return torch.repeat_interleave(torch.arange(len(durations), device=durations.device), durations)


class FrameModel(Stage):
    kind = "frames"
    uses_positions = False  # convolutions know their neighbours; a frame knows its place in its phoneme

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        d, c = config.d_model, config
        self.text_encoder = nn.ModuleList(Block(d, c.kernel_size, c.dropout, conditioned=False) for _ in range(c.text_layers))
        self.voice_input = nn.Linear(c.latent_dim, d)
        self.voice_encoder = nn.ModuleList(Block(d, c.kernel_size, c.dropout, conditioned=False) for _ in range(2))
        self.voice_output = nn.Linear(2 * d, d)
        self.duration_blocks = nn.ModuleList(Block(d, c.kernel_size, c.dropout) for _ in range(2))
        self.duration_head = nn.Linear(d, 1)
        self.since_start = nn.Embedding(MAX_POSITION, d)
        self.until_end = nn.Embedding(MAX_POSITION, d)
        self.frame_blocks = nn.ModuleList(Block(d, c.kernel_size, c.dropout) for _ in range(c.n_layers))
        # With `voice_attention`, after every second frame block the frames also read the prompt's frames.
        self.voice_attention = nn.ModuleList(VoiceAttention(d, c.n_heads) for _ in range(c.n_layers // 2 if c.voice_attention else 0))
        self.latent_head = nn.Linear(d, c.latent_dim)
        # With `accent_adversary`: names a frame's accent from what it takes of the prompt, behind a reversed gradient,
        # and from its phoneme and place in it (an accent is how a voice says a given sound).
        self.accent_classifier = (nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, len(c.accents)))
                                  if c.accent_adversary else None)
        if c.pitch:  # told to the frames as loudly as their phoneme (a zero start is learnt too slowly to be heard)
            self.pitch_embedding = nn.Embedding(PITCH_BINS + 1, d)
            self.pitch_blocks = nn.ModuleList(Block(d, c.kernel_size, c.dropout) for _ in range(2))
            self.pitch_head = nn.Linear(d, 2)  # voiced (a logit), log2 F0 relative to the prompt's `pitch_level`
        # The codec's codebooks [K, V, D] (`use_codebooks`) and the scale of its latents: targets and output in one.
        self.register_buffer("codebooks", torch.zeros(c.n_codebooks, c.codebook_size, c.latent_dim))
        self.register_buffer("latent_scale", torch.ones(()))
        if self.language_embedding is not None:
            nn.init.zeros_(self.language_embedding.weight)

    @property
    def reads_alignment(self) -> bool:
        return True

    @torch.no_grad()
    def use_codebooks(self, codebooks: Tensor) -> None:
        """Take the codec's codebooks `[K, V, D]`, which turn codes into latents and latents back into codes."""
        if codebooks.shape != self.codebooks.shape:
            raise ConfigError(f"the codec's codebooks are {tuple(codebooks.shape)}; this model was configured for "
                              f"{tuple(self.codebooks.shape)} (n_codebooks, codebook_size, latent_dim)")
        self.codebooks.copy_(codebooks)
        self.latent_scale.fill_(float(codebooks[0].float().std()))

    @torch.no_grad()
    def code_hits(self, latent: Tensor, codes: Tensor, code_lens: Tensor, levels: int | None = None) -> list[tuple[int, int]]:
        """Per level (the first `levels`; all by default): (frames whose code, quantised from `latent` `[B, T, D]`, is
        the real one in `codes` `[B, K, T]`, frames), over each utterance's `code_lens` frames."""
        valid = lengths_to_mask(code_lens, codes.shape[2])
        guessed = quantize(latent[valid], self.codebooks[:levels])  # [levels, N]
        real = codes.transpose(0, 1)[:, valid]
        return [(int((g == r).sum()), int(valid.sum())) for g, r in zip(guessed, real)]

    def code_cross_entropy(self, latent: Tensor, codes: Tensor, valid: Tensor) -> Tensor:
        """The true codes' cross-entropy, averaged over the first `code_loss_levels` levels and the `valid` `[B, T]`
        frames (NaturalSpeech 2's CE-RVQ). A level's logits are the negative squared distances from what the true
        codes of the levels before leave of `latent` `[B, T, D]` to its codewords, over the spread of its codebook:
        so measured, a real latent's nearest codeword stands about 5 nats clear of the next at every level, and every
        level pulls on the latent about as hard.

        A regressed latent may lie as near the truth as another yet quantise to a wrong code of a level that carries
        the words; this scores it as the quantiser reads it."""
        residual = latent[valid].float() / self.latent_scale
        real = codes.transpose(1, 2)[valid]  # [N, K]
        loss = torch.zeros((), device=latent.device)
        for level in range(self.config.code_loss_levels):
            book = self.codebooks[level].float() / self.latent_scale
            loss = loss + F.cross_entropy(-squared_distances(residual, book) / book.std(), real[:, level])
            residual = residual - book[real[:, level]]
        return loss / self.config.code_loss_levels

    def latents(self, codes: Tensor) -> Tensor:
        """Codes `[B, K, T]` -> the codec's quantised latents `[B, T, D]`."""
        return sum(self.codebooks[level][codes[:, level]] for level in range(codes.shape[1]))

    # -- the parts ---------------------------------------------------------------------
    def encode_text(self, phonemes: Tensor, phoneme_lens: Tensor, languages: Tensor | None = None) -> Tensor:
        valid = lengths_to_mask(phoneme_lens, phonemes.shape[1])[..., None].to(self.latent_scale.dtype)
        x = self.text_embedding(phonemes)
        if self.language_embedding is not None:
            x = x + self.language_embedding(self.no_language(phonemes) if languages is None else languages)
        x = x * valid
        for block in self.text_encoder:
            x = block(x, valid)
        return x

    def encode_voice(self, prompt: Tensor, prompt_lens: Tensor) -> Voice:
        """Prompt codes `[B, K, T_p]` -> its frames' encodings, and their mean and spread over time as one vector."""
        mask = lengths_to_mask(prompt_lens, prompt.shape[2])
        valid = mask[..., None].to(self.latent_scale.dtype)
        x = self.voice_input(self.latents(prompt) / self.latent_scale) * valid
        for block in self.voice_encoder:
            x = block(x, valid)
        n = valid.sum(1).clamp(min=1)
        mean = x.sum(1) / n
        spread = (((x - mean[:, None]) ** 2 * valid).sum(1) / n).add(1e-5).sqrt()
        return Voice(self.voice_output(torch.cat([mean, spread], dim=1)), x, mask)

    def predict_durations(self, text: Tensor, phoneme_lens: Tensor, voice: Voice) -> Tensor:
        """`[B, P]`: each phoneme's predicted log(1 + frames)."""
        valid = lengths_to_mask(phoneme_lens, text.shape[1])[..., None].to(text.dtype)
        x = text
        for block in self.duration_blocks:
            x = block(x, valid, voice.vector)
        return self.duration_head(x)[..., 0]

    def frame_inputs(self, text: Tensor, path: Tensor, frame_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Each frame's phoneme state and place in it `[B, T, d]`, and which frames are valid `[B, T, 1]`, given the
        phoneme `path` `[B, T]` (indices into `text` `[B, P, d]`)."""
        valid = lengths_to_mask(frame_lens, path.shape[1])[..., None].to(text.dtype)
        since, until = frame_positions(path, frame_lens)
        x = text.gather(1, path.clamp(min=0)[..., None].expand(-1, -1, text.shape[2]))
        return (x + self.since_start(since) + self.until_end(until)) * valid, valid

    def predict_pitch(self, x: Tensor, valid: Tensor, voice: Voice) -> tuple[Tensor, Tensor]:
        """From `frame_inputs`: each frame's voicing logit and log2 F0 relative to the prompt's, each `[B, T]`."""
        for block in self.pitch_blocks:
            x = block(x, valid, voice.vector)
        voiced, relative = self.pitch_head(x).unbind(-1)
        return voiced, relative

    def frame_states(self, x: Tensor, valid: Tensor, voice: Voice, pitch: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The last frame layer's states `[B, T, d]`, from `frame_inputs` (and the F0 in Hz `[B, T]`, 0 where unvoiced,
        for a stage told the pitch), and what the frames took from the voice: its vector plus their reads of the
        prompt's frames, `[B, T, d]`."""
        if self.config.pitch:
            x = x + self.pitch_embedding(pitch_bins(pitch_contour(pitch) if self.config.pitch_contour else pitch)) * valid
        taken = voice.vector[:, None].expand_as(x)
        for i, block in enumerate(self.frame_blocks):
            x = block(x, valid, voice.vector)
            if i % 2 == 1 and i // 2 < len(self.voice_attention):
                read = self.voice_attention[i // 2](x, valid, voice)
                x, taken = x + read, taken + read
        return x, taken

    def predict_latents(self, x: Tensor, valid: Tensor, voice: Voice, pitch: Tensor | None = None) -> Tensor:
        """`[B, T, D]`: each frame's latent (`frame_states` for the arguments)."""
        return self.latent_head(self.frame_states(x, valid, voice, pitch)[0]) * self.latent_scale

    def accent_adversary_loss(self, taken: Tensor, inputs: Tensor, valid: Tensor,
                              accents: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """The accent classifier's cross-entropy of each labelled utterance's accent (`accents` `[B]`, an index into
        `config.accents`; -1: none known) from what its `valid` `[B, T]` frames took of the voice (`frame_states`),
        through a reversed gradient, beside their `frame_inputs` (no gradient: the phonemes are not to hide it); and
        (frames it named right, frames labelled)."""
        labels = accents[:, None].expand_as(valid)
        told = valid & (labels >= 0)
        if not told.any():
            return torch.zeros((), device=taken.device), (0, 0)
        logits = self.accent_classifier(torch.cat([ReversedGradient.apply(taken[told]), inputs[told].detach()], -1)).float()
        hits = int((logits.argmax(-1) == labels[told]).sum())
        return F.cross_entropy(logits, labels[told]), (hits, int(told.sum()))

    # -- training ----------------------------------------------------------------------
    def forward(self, phonemes: Tensor, phoneme_lens: Tensor, codes: Tensor, code_lens: Tensor, alignment: Tensor,
                prompt: Tensor, prompt_lens: Tensor, languages: Tensor | None = None, pitch: Tensor | None = None,
                prompt_pitch: Tensor | None = None, accents: Tensor | None = None,
                taught: Taught | None = None) -> FrameOutput:
        """Losses on `codes` `[B, K, T]` (padded) with their `alignment` `[B, T]` (each frame's phoneme index) and a
        `prompt` `[B, K, T_p]` of the same voice; for a stage told the pitch, also the frames' `pitch` `[B, T]` (Hz,
        0 where unvoiced) and the prompt's `pitch_level` `[B]`; for a stage with an `accent_adversary`, the
        speakers' `accents` `[B]` (indices into `config.accents`, -1 where none is known; None: no such loss).
        The utterances of `taught.rows` learn a teacher's latents and durations in place of their codes' and their
        alignment's (their codes then take no `code_loss`); their pitch and the held-out scores stay the recordings'."""
        if alignment is None:
            raise ConfigError("the frame stage learns from each frame's phoneme: run `valle data align` on every "
                              "training and validation folder")
        if self.config.pitch and (pitch is None or prompt_pitch is None):
            raise ConfigError("this frame stage learns from each frame's pitch: run `valle data pitch` on every "
                              "training and validation folder")
        text = self.encode_text(phonemes, phoneme_lens, languages)
        voice = self.encode_voice(prompt, prompt_lens)
        x, valid = self.frame_inputs(text, alignment, code_lens)
        states, taken = self.frame_states(x, valid, voice, pitch)
        latent = self.latent_head(states) * self.latent_scale
        counts = torch.zeros(phonemes.shape, device=phonemes.device)  # float32 under autocast too: counts stay exact
        counts.scatter_add_(1, alignment.clamp(min=0), valid[..., 0].float())
        target, target_durations, coded = self.latents(codes), counts.log1p(), valid[..., 0] > 0
        if taught is not None:
            target = torch.where(taught.rows[:, None, None], taught.latent.to(target.dtype), target)
            target_durations = torch.where(taught.rows[:, None], taught.durations.float(), target_durations)
            coded = coded & ~taught.rows[:, None]
        error = (latent - target) / self.latent_scale
        denominator = valid.sum() * latent.shape[2]
        latent_loss = ((error.abs() + error ** 2) * valid).sum() / denominator
        code_loss = torch.zeros((), device=latent.device)
        if self.config.code_loss and coded.any():
            code_loss = self.code_cross_entropy(latent, codes, coded)
        durations = self.predict_durations(text, phoneme_lens, voice)
        told = lengths_to_mask(phoneme_lens, phonemes.shape[1]).float()
        duration_loss = (((durations - target_durations) ** 2) * told).sum() / told.sum()
        pitch_loss = torch.zeros((), device=latent.device)
        if self.config.pitch:
            voiced_logit, relative = self.predict_pitch(x, valid, voice)
            voiced = (pitch > 0).to(latent.dtype) * valid[..., 0]
            pitch_loss = (F.binary_cross_entropy_with_logits(voiced_logit.float(), voiced.float(), reduction="none")
                          * valid[..., 0]).sum() / valid.sum()
            target = pitch.float().clamp(min=1.0).log2() - prompt_pitch[:, None]
            pitch_loss = pitch_loss + ((relative.float() - target).abs() * voiced).sum() / voiced.sum().clamp(min=1)
        accent_loss, accent_hits = torch.zeros((), device=latent.device), (0, 0)
        if self.accent_classifier is not None and accents is not None:
            accent_loss, accent_hits = self.accent_adversary_loss(taken, x, valid[..., 0] > 0, accents)
        loss = (latent_loss + duration_loss + pitch_loss + self.config.code_loss * code_loss
                + self.config.accent_adversary * accent_loss)
        return FrameOutput(loss, latent_loss, duration_loss, pitch_loss, code_loss, accent_loss, accent_hits, latent,
                           durations, counts)

    @torch.no_grad()
    def teach(self, phonemes: Tensor, phoneme_lens: Tensor, code_lens: Tensor, alignment: Tensor, prompt: Tensor,
              prompt_lens: Tensor, rows: Tensor, languages: Tensor | None = None, pitch: Tensor | None = None) -> Taught:
        """This stage as a teacher of another (`forward`'s arguments of the same names, `languages` in this stage's
        ids): the latents it renders at each utterance's true alignment, and the durations it gives its phonemes.

        A student learning these for some voices learns this stage's way of speaking them (sequence-level knowledge
        distillation; FastSpeech learnt its durations and its spectrograms from its autoregressive teacher)."""
        text = self.encode_text(phonemes, phoneme_lens, languages)
        voice = self.encode_voice(prompt, prompt_lens)
        x, valid = self.frame_inputs(text, alignment, code_lens)
        latent = self.predict_latents(x, valid, voice, pitch if self.config.pitch else None)
        return Taught(latent, self.predict_durations(text, phoneme_lens, voice), rows)

    # -- inference ---------------------------------------------------------------------
    def _encode(self, phonemes: Tensor, prompt: Tensor, languages: Tensor | None) -> tuple[Tensor, Tensor, Voice]:
        """One utterance's phonemes `[P]` (their lengths and states) and the voice of `prompt` codes `[K, T_p]`."""
        lens = torch.tensor([len(phonemes)], device=phonemes.device)
        text = self.encode_text(phonemes[None], lens, None if languages is None else languages[None])
        return lens, text, self.encode_voice(prompt[None], torch.tensor([prompt.shape[1]], device=prompt.device))

    def _durations(self, text: Tensor, lens: Tensor, voice: Voice, sounding: Tensor, pace: float) -> Tensor:
        frames = frames_of(self.predict_durations(text, lens, voice)[0], pace)
        return torch.where(sounding, frames.clamp(min=1), frames)

    def voice_of(self, latent: Tensor) -> Tensor:
        """`[1, d]`: the voice vector this stage reads in a rendering of its own, latents `[1, T, D]`, as codes."""
        codes = quantize(latent[0], self.codebooks)
        return self.encode_voice(codes[None], torch.tensor([codes.shape[1]], device=codes.device)).vector

    def _latents(self, text: Tensor, path: Tensor, voice: Voice, prompt_pitch: float | None,
                 pitch: Tensor | None = None, feedback: float = 0.0) -> Tensor:
        """The latents `[T, D]` of the frames of `path`, before any change toward the prompt."""
        x, valid = self.frame_inputs(text, path[None], torch.tensor([len(path)], device=path.device))
        if self.config.pitch and pitch is None:
            voiced, relative = self.predict_pitch(x, valid, voice)
            level = DEFAULT_PITCH if prompt_pitch is None else prompt_pitch
            pitch = torch.where(voiced > 0, torch.exp2(relative.float() + level), 0.0)[0]
        told = None if pitch is None else pitch[None]
        latent = self.predict_latents(x, valid, voice, told)
        if feedback:  # again, in the voice moved past the prompt's by what the first rendering fell short of it
            shortfall = voice.vector - self.voice_of(latent)
            latent = self.predict_latents(x, valid, replace(voice, vector=voice.vector + feedback * shortfall), told)
        return latent[0]

    def _render(self, text: Tensor, path: Tensor, voice: Voice, prompt: Tensor, prompt_pitch: float | None,
                variance: float, pitch: Tensor | None = None, feedback: float = 0.0,
                latent_map: PromptMap | None = None) -> Tensor:
        latent = self._latents(text, path, voice, prompt_pitch, pitch, feedback)
        if latent_map is not None:
            latent = latent_map(latent)
        if variance:
            latent = match_variance(latent, self.latents(prompt[None])[0], variance)
        return quantize(latent, self.codebooks)

    @torch.no_grad()
    def durations(self, phonemes: Tensor, prompt: Tensor, sounding: Tensor, languages: Tensor | None = None,
                  pace: float = 1.0) -> Tensor:
        """`[P]` frames for each of `phonemes` `[P]` in the voice of `prompt` codes `[K, T_p]`; every `sounding`
        `[P]` phoneme gets at least one. `pace` > 1 speaks faster."""
        lens, text, voice = self._encode(phonemes, prompt, languages)
        return self._durations(text, lens, voice, sounding, pace)

    @torch.no_grad()
    def prompt_pace(self, prompt_phonemes: Tensor, prompt: Tensor, sounding: Tensor,
                    languages: Tensor | None = None) -> float:
        """How many times as fast as this stage would say them the prompt (codes `[K, T_p]`) says its own words,
        `prompt_phonemes` `[P]` (`sounding` and `languages` as for `durations`), within PACE_RANGE: the `pace` at
        which the stage speaks in the prompt's speaking rate."""
        predicted = float(self.durations(prompt_phonemes, prompt, sounding, languages).sum())
        return min(max(predicted / prompt.shape[1], PACE_RANGE[0]), PACE_RANGE[1])

    @torch.no_grad()
    def prompt_map(self, prompt_phonemes: Tensor, prompt_path: Tensor, prompt: Tensor, languages: Tensor | None = None,
                   prompt_pitch: float | None = None, ridge: float | None = 10.0,
                   neighbours: float = 0.0) -> PromptMap:
        """The `PromptMap` that takes this stage's rendering of the prompt's own words, `prompt_phonemes` `[P]` at the
        prompt's frames `prompt_path` `[T_p]` (each frame's index into them: its alignment), nearest the real latents of
        the prompt, codes `[K, T_p]`: an affine map held toward the identity by `ridge` (None: the identity), then
        `neighbours` of the residual left at the nearest prompt frames. Given to `render` or `generate`, it moves each
        frame of a rendering as it moves the prompt's own."""
        if len(prompt_path) != prompt.shape[1]:
            raise ValueError(f"the prompt's alignment has {len(prompt_path)} frames and the prompt {prompt.shape[1]}")
        _, text, voice = self._encode(prompt_phonemes, prompt, languages)
        rendered = self._latents(text, prompt_path, voice, prompt_pitch).float()
        real = self.latents(prompt[None])[0].float()
        if ridge is None:
            weight, bias = torch.eye(rendered.shape[1], device=rendered.device), torch.zeros_like(rendered[0])
        else:
            weight, bias = fit_latent_map(rendered, real, ridge)
        return PromptMap(weight, bias, rendered @ weight + bias, real, neighbours)

    @torch.no_grad()
    def render(self, phonemes: Tensor, path: Tensor, prompt: Tensor, languages: Tensor | None = None,
               prompt_pitch: float | None = None, variance: float = 0.0, pitch: Tensor | None = None,
               feedback: float = 0.0, latent_map: PromptMap | None = None) -> Tensor:
        """Codes `[K, T]` for the frames of `path` `[T]` (each frame's index into `phonemes` `[P]`) in the voice of
        `prompt` codes `[K, T_p]`. For a stage told the pitch: at the pitch it predicts relative to `prompt_pitch`,
        the `pitch_level` of the prompt's recording (None: DEFAULT_PITCH), or at the frames' given `pitch` `[T]` (Hz,
        0 unvoiced). `variance`: how far the latents' spread moves toward the prompt's (`match_variance`);
        `feedback`: how far past the prompt's voice a second rendering goes, in multiples of the first's shortfall
        (0: rendered once); `latent_map`: a `PromptMap` of every latent, before `variance` (`prompt_map`)."""
        _, text, voice = self._encode(phonemes, prompt, languages)
        return self._render(text, path, voice, prompt, prompt_pitch, variance, pitch, feedback, latent_map)

    @torch.no_grad()
    def generate(self, phonemes: Tensor, prompt: Tensor, sounding: Tensor, languages: Tensor | None = None,
                 pace: float = 1.0, prompt_pitch: float | None = None, variance: float = 0.0,
                 feedback: float = 0.0, latent_map: PromptMap | None = None) -> Tensor:
        """`durations`, then `render` at them: codes `[K, T]`, the phonemes and the voice read once."""
        lens, text, voice = self._encode(phonemes, prompt, languages)
        path = path_of(self._durations(text, lens, voice, sounding, pace))
        return self._render(text, path, voice, prompt, prompt_pitch, variance, feedback=feedback, latent_map=latent_map)
