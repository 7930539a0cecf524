"""Does sampling the frame stage's latent, instead of regressing its mean, keep more of a voice?

The bundled frame stage is held fixed; a small head learns the real latent's distribution around
the stage's regressed latent by conditional flow matching (rectified flow: straight paths from
Gaussian noise), conditioned on the stage's last frame states and the prompt's voice vector. It is
scored as `benchmarks/frame_stage.py` scores a stage at the true durations: 6 utterances of each
test speaker, each from 3 s of another of its utterances, WER by the Whisper judge and SIM to the
prompt's codes decoded, for the mean (as synthesis renders it, with and without `variance`) and for
latents sampled in 16 Euler steps from noise of the scales given (recipes/tournament.md).

    python recipes/flow_head_probe.py train 24 runs/flow_head.pt     # CPU minutes, on the ARMS folders
    python recipes/flow_head_probe.py score runs/flow_head.pt [NOISE_SCALE ...]    # default 1 0.7
"""

import math
import random
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from valle.asr import load_recognizer, word_error_rate
from valle.codec import load_codec
from valle.data.shards import TokenizedCorpus, TokenizedUtterance, open_corpus
from valle.model import FrameModel, Stage
from valle.model.frames import Block, match_variance, quantize, voice_slices
from valle.speaker import SpeakerEncoder, cosine
from valle.train.batching import collate, collate_alignments, phoneme_languages

ARMS = ["runs/tokens/train", "runs/tokens/mix1_human_train", *(f"runs/tokens/synth_{x}_train" for x in ("bg", "de", "es", "ro"))]
PROMPT_FRAMES = 150


class FlowHead(nn.Module):
    """The velocity from a noisy residual latent toward the real one, given its time and the stage's frame states."""

    def __init__(self, d: int, latent_dim: int, layers: int = 4) -> None:
        super().__init__()
        self.input = nn.Linear(latent_dim, d)
        self.time = nn.Sequential(nn.Linear(64, d), nn.GELU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(d, 5, 0.0) for _ in range(layers))
        self.output = nn.Linear(d, latent_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x_t: Tensor, t: Tensor, states: Tensor, valid: Tensor, voice: Tensor) -> Tensor:
        angles = 1000 * t[:, None] * torch.exp(torch.arange(32) * (-math.log(1000.0) / 32))
        condition = self.time(torch.cat([angles.sin(), angles.cos()], -1)) + voice
        x = (states + self.input(x_t)) * valid
        for block in self.blocks:
            x = block(x, valid, condition)
        return self.output(x)


def stage_outputs(stage: FrameModel, items: list, batch: tuple[Tensor, ...], prompt: Tensor,
                  prompt_lens: Tensor) -> tuple[Tensor, ...]:
    """The fixed stage's last frame states, regressed latents, valid frames and voice vectors, at the true alignment
    of `items` (`batch`: their `collate`)."""
    phonemes, phoneme_lens, codes, code_lens = batch
    captured = {}
    hook = stage.latent_head.register_forward_hook(lambda module, inputs, output: captured.update(states=inputs[0]))
    with torch.no_grad():
        text = stage.encode_text(phonemes, phoneme_lens, phoneme_languages(items, stage, phonemes.shape[1], "cpu"))
        voice = stage.encode_voice(prompt, prompt_lens)
        x, valid = stage.frame_inputs(text, collate_alignments(items, stage, codes.shape[2]).clamp(min=0), code_lens)
        mean = stage.predict_latents(x, valid, voice)
    hook.remove()
    return captured["states"], mean, valid, voice.vector


def train(stage: FrameModel, minutes: float, out: str) -> None:
    torch.set_num_threads(2)
    corpus, head = open_corpus(ARMS), FlowHead(stage.config.d_model, stage.config.latent_dim)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    generator, started, step = torch.Generator().manual_seed(0), time.process_time(), 0
    while time.process_time() - started < minutes * 60:
        items = [u for u in (corpus[i] for i in random.sample(range(len(corpus)), 12)) if u.codes.shape[1] <= 600]
        batch = collate(items)
        codes, code_lens = batch[2:]
        prompt, prompt_lens, _ = voice_slices(codes, code_lens, PROMPT_FRAMES, generator)
        states, mean, valid, voice = stage_outputs(stage, items, batch, prompt, prompt_lens)
        target = (stage.latents(codes) - mean) / stage.latent_scale
        noise, t = torch.randn_like(target), torch.rand(len(items))
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * target
        loss = (((head(x_t, t, states, valid, voice) - (target - noise)) ** 2) * valid).sum() / (valid.sum() * target.shape[2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 20 == 0:
            print(f"step {step}: loss {loss.item():.4f}, {time.process_time() - started:.0f} CPU s", flush=True)
    torch.save(head.state_dict(), out)


def sample(head: FlowHead, states: Tensor, valid: Tensor, voice: Tensor, scale: float, steps: int = 16) -> Tensor:
    x = torch.randn(*states.shape[:2], head.output.out_features, generator=torch.Generator().manual_seed(0)) * scale
    with torch.no_grad():
        for i in range(steps):
            x = x + head(x, torch.full((len(x),), i / steps), states, valid, voice) / steps
    return x


def bundled_stage() -> FrameModel:
    """The bundled frame stage, held fixed, with the probes' seeds set."""
    torch.manual_seed(0)
    random.seed(0)
    return Stage.from_pretrained("valle/infer/pretrained/default/frames").eval().requires_grad_(False)


def judge(stage: FrameModel, rows: list[str], render: Callable[[TokenizedUtterance, Tensor], dict[str, Tensor]]) -> None:
    """Print the WER and SIM(·, prompt) of each of `rows`, the codes `[K, T]` that `render` gives for a test utterance
    from a prompt (codes `[K, P]`): 6 utterances of each test speaker, each from 3 s of another of its utterances."""
    torch.set_num_threads(1)
    corpus = TokenizedCorpus("runs/tokens/test")
    codec, speaker, asr = load_codec(corpus.codec.name), SpeakerEncoder(), load_recognizer("auto", threads=1)
    by_speaker: dict[str, list[str]] = {}
    for position in range(len(corpus)):
        by_speaker.setdefault(corpus[position].speaker, []).append(corpus[position].id)
    pairs = [(ids[i], ids[(i + 1) % len(ids)]) for ids in by_speaker.values() for i in range(6)]
    similarity, heard, references = {r: [] for r in rows}, {r: [] for r in rows}, []
    for id_, prompt_id in pairs:
        u, prompt = corpus[id_], corpus[prompt_id].codes[:, :PROMPT_FRAMES]
        decoded = render(u, prompt)
        with torch.no_grad():
            voice_print = speaker.embed(codec.decode(prompt[None])[0].numpy(), codec.sample_rate)
            for row in rows:
                audio = codec.decode(decoded[row][None])[0].numpy()
                similarity[row].append(cosine(speaker.embed(audio, codec.sample_rate), voice_print))
                heard[row].append(asr.transcribe(audio, codec.sample_rate))
        references.append(u.text)
    print("| decoded | WER | SIM(·, prompt) |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row} | {100 * word_error_rate(references, heard[row]):.1f} % | {np.mean(similarity[row]):.3f} |")


def score(stage: FrameModel, path: str, scales: list[float]) -> None:
    head = FlowHead(stage.config.d_model, stage.config.latent_dim)
    head.load_state_dict(torch.load(path))
    rows = ["mean", "mean, variance", *(f"sampled from noise {x:g}{v}" for x in scales for v in ("", ", variance"))]

    def render(u: TokenizedUtterance, prompt: Tensor) -> dict[str, Tensor]:
        states, mean, valid, voice = stage_outputs(stage, [u], collate([u]), prompt[None], torch.tensor([prompt.shape[1]]))
        real = stage.latents(prompt[None])[0]
        latents = dict(zip(rows[:2], [mean[0], match_variance(mean[0], real)]))
        for x in scales:
            sampled = (mean + sample(head, states, valid, voice, x) * stage.latent_scale)[0]
            latents[f"sampled from noise {x:g}"], latents[f"sampled from noise {x:g}, variance"] = sampled, match_variance(sampled, real)
        return {row: quantize(latent, stage.codebooks) for row, latent in latents.items()}

    judge(stage, rows, render)


if __name__ == "__main__":
    bundled = bundled_stage()
    if sys.argv[1] == "train":
        train(bundled, float(sys.argv[2]), sys.argv[3])
    else:
        score(bundled, sys.argv[2], [float(x) for x in sys.argv[3:]] or [1.0, 0.7])
