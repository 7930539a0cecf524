"""Which part of the prompt's residual is the voice? Learnt from other utterances of the training speakers.

A probe, not an option. `--prompt-neighbours` moves each frame by the residual (the prompt's real
latents minus the stage's mapped rendering of them) at the prompt frames nearest it, whole: their
sounds with their voice. Here a small attention learns what to take: each training utterance is
rendered by the bundled stage at its aligned frames, in the voice of 3 s of another utterance of
its speaker, both mapped by the prompt's own affine map (`fit_latent_map`, as `--prompt-map 0.1`);
each frame of the utterance queries the prompt's mapped frames and reads back their residuals,
trained to predict the utterance's own residual, which the prompt does not hold. Only what is the
same across a speaker's utterances can be learnt so. Held out: the squared error of the residual
predicted for the validation speakers and the held-out people, against none and against the
nearest frames' residual at several shares; `score` runs the benchmark with it in place of the
nearest frames (recipes/tournament.md).

    python recipes/learned_residual_probe.py train MINUTES OUT.pt
    python recipes/learned_residual_probe.py score OUT.pt SHARE [zero_shot.py options]
"""

import random
import sys
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zero_shot_run import zero_shot

from valle.data.shards import TokenizedCorpus
from valle.infer.pipeline import VallE
from valle.model.frames import FrameModel, PromptMap
from valle.train.batching import utterance_languages

FOLDERS = ["runs/tokens/mix1_human_train", "runs/tokens/train"] + [f"runs/tokens/synth_{lang}_train" for lang in ("bg", "de", "es", "ro")]
HELD_OUT = {"validation voices": ["runs/tokens/valid"], "people": ["runs/tokens/mix1_human_valid"]}
PROMPT_FRAMES, MAX_FRAMES, RIDGE = 150, 400, 10.0


class ResidualAttention(nn.Module):
    """Each frame's residual read from the prompt frames' residuals, by attention over their mapped renderings."""

    def __init__(self, d: int = 128, width: int = 128, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key = nn.Linear(d, width), nn.Linear(d, width)
        self.value = nn.Linear(2 * d, width)
        self.out = nn.Linear(width, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, latent: Tensor, rendered: Tensor, real: Tensor) -> Tensor:
        """`latent` `[T, D]` (mapped), the prompt's mapped `rendered` and `real` `[T_p, D]` -> the residual `[T, D]`."""
        def split(x: Tensor) -> Tensor:
            return x.view(x.shape[0], self.heads, -1).transpose(0, 1)
        q, k = split(self.query(latent)), split(self.key(rendered))
        v = split(self.value(torch.cat([rendered, real - rendered], -1)))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(0, 1).reshape(len(latent), -1))


@torch.no_grad()
def examples(stage: FrameModel, folders: list[str], count: int, seed: int) -> list[tuple[Tensor, Tensor, PromptMap]]:
    """`count` (utterance's rendered latents, its real latents, the `PromptMap` of its prompt), each utterance's prompt
    3 s of another utterance of its speaker."""
    rng, items, by_speaker = random.Random(seed), [], {}
    for folder in folders:
        corpus = TokenizedCorpus(folder)
        for i, speaker in enumerate(corpus.speakers()):
            by_speaker.setdefault((folder, speaker), []).append((corpus, i))
    groups = [g for g in by_speaker.values() if len(g) > 1]
    while len(items) < count:
        group = rng.choice(groups)
        (corpus, i), (other_corpus, j) = rng.sample(group, 2)
        u, p = corpus[i], other_corpus[j]
        if p.codes.shape[1] < PROMPT_FRAMES or u.codes.shape[1] > MAX_FRAMES:
            continue
        start = rng.randrange(p.codes.shape[1] - PROMPT_FRAMES + 1)
        prompt = p.codes[:, start:start + PROMPT_FRAMES]
        path_p = p.alignment.clamp(max=len(p.phonemes) - 1)[start:start + PROMPT_FRAMES]
        prompt_map = stage.prompt_map(p.phonemes, path_p, prompt, utterance_languages(p, stage), ridge=RIDGE)
        _, text_u, voice = stage._encode(u.phonemes, prompt, utterance_languages(u, stage))
        rendered_u = stage._latents(text_u, u.alignment.clamp(max=len(u.phonemes) - 1), voice, None).float()
        items.append((rendered_u, stage.latents(u.codes[None])[0].float(), prompt_map))
    return items


@torch.no_grad()
def errors(model: ResidualAttention, items: list[tuple[Tensor, Tensor, PromptMap]], scale: Tensor) -> dict[str, float]:
    """Mean squared error per dimension (in units of the latents' scale) of each way of moving the mapped latents
    toward the real ones: none, the learnt residual, and the nearest prompt frames' (`PromptMap`) at several shares."""
    def learnt(rendered: Tensor, prompt_map: PromptMap) -> Tensor:
        mapped = prompt_map(rendered)
        return mapped + model(mapped, prompt_map.rendered, prompt_map.real)

    ways = {"none": lambda rendered, prompt_map: prompt_map(rendered), "learnt": learnt}
    ways |= {f"nearest x{share}": (lambda s: lambda rendered, prompt_map: replace(prompt_map, neighbours=s)(rendered))(share)
             for share in (0.25, 0.5, 1.0)}
    totals = dict.fromkeys(ways, 0.0)
    frames = 0
    for rendered, target, prompt_map in items:
        for name, way in ways.items():
            totals[name] += float(((target - way(rendered, prompt_map)) / scale).pow(2).mean(1).sum())
        frames += len(rendered)
    return {name: total / frames for name, total in totals.items()}


def train(minutes: float, out: str) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    stage = VallE.from_pretrained("default").frames.float().eval()
    scale = stage.latent_scale.float()
    started = time.monotonic()
    data = examples(stage, FOLDERS, 3000, seed=0)
    held = {name: examples(stage, folders, 150, seed=1) for name, folders in HELD_OUT.items()}
    print(f"rendered {len(data)} training pairs in {time.monotonic() - started:.0f} s", flush=True)
    model = ResidualAttention()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for name, items in held.items():
        print(f"step 0 {name}:", {k: round(v, 4) for k, v in errors(model, items, scale).items()}, flush=True)
    step, rng, began = 0, random.Random(0), time.monotonic()
    while time.monotonic() - began < minutes * 60:
        loss = 0.0
        for rendered, target, prompt_map in rng.sample(data, 16):
            mapped = prompt_map(rendered)
            loss = loss + (((target - mapped) - model(mapped, prompt_map.rendered, prompt_map.real)) / scale).pow(2).mean()
        optimizer.zero_grad()
        (loss / 16).backward()
        optimizer.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} train {loss.item() / 16:.4f}", flush=True)
    for name, items in held.items():
        print(f"step {step} {name}:", {k: round(v, 4) for k, v in errors(model, items, scale).items()}, flush=True)
    torch.save(model.state_dict(), out)


def score(weights: str, share: float, options: list[str]) -> None:
    """The zero-shot benchmark with `share` times the learnt residual in place of the nearest frames'."""
    model = ResidualAttention()
    model.load_state_dict(torch.load(weights))
    model.eval()

    def call(self: PromptMap, latent: Tensor) -> Tensor:
        latent = latent.float() @ self.weight + self.bias
        with torch.no_grad():
            return latent + share * model(latent, self.rendered, self.real)

    PromptMap.__call__ = call
    sys.exit(zero_shot([*options, "--prompt-neighbours", "1"]))  # the map's frames and residuals, as for N


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(float(sys.argv[2]), sys.argv[3])
    else:
        score(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
