"""Can an autoregressive stage over the lowest codec levels, told each frame's content by the frame stage, give the
renderings back the voice that the regressed mean loses?

The bundled frame stage is held fixed. A small causal transformer reads the prompt's codes of levels 1-2 (3 s of
another utterance of the speaker, VALL-E's in-context prompt), then predicts the target's levels 1 and 2 frame by
frame; each target frame is told the fixed stage's last frame state and regressed latent at that frame, so that it
need not find the words itself. Level 2 is predicted from the frame's state and its level-1 code (a depth step).
The levels above are the residual quantisation of the stage's latent under the two sampled codes, or the stage's own
codes there. The judge is `benchmarks/frame_stage.py`'s at the true durations: 6 utterances of each test speaker,
WER by the Whisper judge and SIM to the prompt's codes decoded (recipes/tournament.md).

    python recipes/ar_refiner_probe.py train 50 runs/ar_refiner.pt [THREADS]   # CPU minutes on the ARMS folders;
                                                                               # again: on from where it stopped
    python recipes/ar_refiner_probe.py score runs/ar_refiner.pt
"""

import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from flow_head_probe import ARMS, PROMPT_FRAMES, bundled_stage, judge, stage_outputs
from torch import Tensor, nn

from valle.codec.rvq import residual_codes
from valle.data.shards import TokenizedCorpus, TokenizedUtterance, open_corpus
from valle.model import FrameModel
from valle.model.frames import match_variance
from valle.model.layers import LayerCache, SinusoidalPositions, TransformerLayer
from valle.train.batching import OtherUtterances, collate

LEVELS = 2
HEADS = 4


class Refiner(nn.Module):
    """Levels 1-2 of each frame from those of the frames before and the frame stage's reading of the frame."""

    def __init__(self, d_stage: int, latent_dim: int, codebook_size: int, d: int = 256, layers: int = 4) -> None:
        super().__init__()
        self.bos = codebook_size
        self.previous = nn.ModuleList(nn.Embedding(codebook_size + 1, d) for _ in range(LEVELS))
        self.current = nn.Embedding(codebook_size, d)  # the frame's level-1 code, for its level 2
        self.states, self.latent = nn.Linear(d_stage, d), nn.Linear(latent_dim, d)
        self.prompt = nn.Parameter(torch.zeros(d))
        self.positions = SinusoidalPositions(d)
        self.layers = nn.ModuleList(TransformerLayer(d, HEADS, 4 * d, 0.1) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.ModuleList(nn.Linear(d, codebook_size) for _ in range(LEVELS))

    def condition(self, states: Tensor, latent: Tensor) -> Tensor:
        return self.states(states) + self.latent(latent)

    def hidden(self, previous: Tensor, condition: Tensor, offset: int = 0, mask: Tensor | None = None,
               cache: list[LayerCache] | None = None) -> Tensor:
        """`previous` `[B, 2, L]` codes of the frame before each (BOS first), `condition` `[B, L, d]`."""
        x = self.positions(sum(e(previous[:, k]) for k, e in enumerate(self.previous)) + condition, offset)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, cache=None if cache is None else cache[i])
        return self.norm(x)

    def logits(self, hidden: Tensor, level1: Tensor) -> tuple[Tensor, Tensor]:
        return self.heads[0](hidden), self.heads[1](hidden + self.current(level1))


def sequences(refiner: Refiner, prompt: Tensor, prompt_lens: Tensor, codes: Tensor, condition: Tensor,
              valid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each prompt's levels 1-2 followed by its target's, left-aligned: (codes `[B, 2, L]`, the codes before each,
    conditions `[B, L, d]`, target frames `[B, L]`)."""
    batch = len(codes)
    length = int((prompt_lens + valid.sum(1)).max())
    joined = torch.zeros(batch, LEVELS, length, dtype=torch.long)
    conditions = torch.zeros(batch, length, condition.shape[2])
    target = torch.zeros(batch, length, dtype=torch.bool)
    for b in range(batch):
        p, t = int(prompt_lens[b]), int(valid[b].sum())
        joined[b, :, :p], joined[b, :, p:p + t] = prompt[b, :LEVELS, :p], codes[b, :LEVELS, :t]
        conditions[b, :p], conditions[b, p:p + t] = refiner.prompt, condition[b, :t]
        target[b, p:p + t] = True
    previous = torch.cat([torch.full((batch, LEVELS, 1), refiner.bos), joined[:, :, :-1]], 2)
    return joined, previous, conditions, target


def losses(refiner: Refiner, stage: FrameModel, corpus, others: OtherUtterances, positions: list[int],
           generator: torch.Generator) -> tuple[Tensor, list[float]]:
    items = [corpus[p] for p in positions]
    _, _, voices, voice_lens = collate([corpus[others.pick(p, generator)] for p in positions])
    prompt, prompt_lens = voices[:, :, :PROMPT_FRAMES], voice_lens.clamp(max=PROMPT_FRAMES)  # each one's first 3 s
    batch = collate(items)
    states, mean, valid, _ = stage_outputs(stage, items, batch, prompt, prompt_lens)
    valid = valid[..., 0] > 0
    condition = refiner.condition(states, mean / stage.latent_scale)
    joined, previous, conditions, target = sequences(refiner, prompt, prompt_lens, batch[2], condition, valid)
    causal = torch.ones(joined.shape[2], joined.shape[2], dtype=torch.bool).tril()
    hidden = refiner.hidden(previous, conditions, mask=causal)
    logits = refiner.logits(hidden, joined[:, 0])
    loss = sum(F.cross_entropy(x[target], joined[:, k][target]) for k, x in enumerate(logits)) / LEVELS
    hits = [float((x[target].argmax(-1) == joined[:, k][target]).float().mean()) for k, x in enumerate(logits)]
    return loss, hits


def train(stage: FrameModel, minutes: float, out: str, threads: int) -> None:
    """Train for `minutes` of CPU time, on from `out` where it holds an earlier run's refiner and optimizer."""
    torch.set_num_threads(threads)
    corpus, held_out = open_corpus(ARMS), TokenizedCorpus("runs/tokens/valid")
    others, held_others = OtherUtterances(corpus.speakers()), OtherUtterances(held_out.speakers())
    refiner = Refiner(stage.config.d_model, stage.config.latent_dim, stage.config.codebook_size)
    optimizer = torch.optim.AdamW(refiner.parameters(), lr=5e-4, weight_decay=0.01)
    generator, started, step = torch.Generator().manual_seed(0), time.process_time(), 0
    if Path(out).exists():
        saved = torch.load(out)
        refiner.load_state_dict(saved["refiner"])
        optimizer.load_state_dict(saved["optimizer"])
        step = saved["step"]
        generator.manual_seed(step)
    fixed = list(range(0, len(held_out), max(1, len(held_out) // 24)))[:24]
    while time.process_time() - started < minutes * 60:
        positions = [p for p in random.sample(range(len(corpus)), 10) if corpus[p].codes.shape[1] <= 500][:8]
        for group in optimizer.param_groups:
            group["lr"] = 5e-4 * min(1.0, (step + 1) / 100)
        refiner.train()
        loss, hits = losses(refiner, stage, corpus, others, positions, generator)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(refiner.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 100 == 0:
            refiner.eval()
            with torch.no_grad():
                held_loss, held_hits = losses(refiner, stage, held_out, held_others, fixed, torch.Generator().manual_seed(1))
            print(f"step {step}: loss {loss.item():.3f}, held out {held_loss.item():.3f}, levels 1/2 right "
                  f"{held_hits[0]:.3f} / {held_hits[1]:.3f}, {time.process_time() - started:.0f} CPU s", flush=True)
    torch.save({"refiner": refiner.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, out)


@torch.no_grad()
def sample(refiner: Refiner, prompt: Tensor, condition: Tensor, temperature: float, top_k: int,
           generator: torch.Generator) -> Tensor:
    """Levels 1-2 `[2, T]` for the `condition` `[T, d]` of each frame, after `prompt` codes `[K, P]`."""
    p, frames = prompt.shape[1], condition.shape[0]
    d = refiner.prompt.shape[0]
    cache = [LayerCache(1, HEADS, p + frames, d // HEADS, condition) for _ in refiner.layers]
    previous = torch.cat([torch.full((LEVELS, 1), refiner.bos), prompt[:LEVELS]], 1)
    refiner.hidden(previous[None, :, :p], refiner.prompt.expand(p, d)[None],  # the prompt, into the cache
                   mask=torch.ones(p, p, dtype=torch.bool).tril(), cache=cache)
    last, out = previous[:, p], torch.zeros(LEVELS, frames, dtype=torch.long)

    def pick(logits: Tensor) -> Tensor:
        if temperature == 0:
            return logits.argmax(-1)
        top = logits.topk(top_k)
        return top.indices[torch.multinomial((top.values / temperature).softmax(-1), 1, generator=generator)[0]]

    for t in range(frames):
        hidden = refiner.hidden(last[None, :, None], condition[None, t:t + 1], offset=p + t, cache=cache)[0, 0]
        level1 = pick(refiner.heads[0](hidden))
        level2 = pick(refiner.heads[1](hidden + refiner.current(level1)))
        out[:, t] = last = torch.stack([level1, level2])
    return out


def score(stage: FrameModel, path: str) -> None:
    refiner = Refiner(stage.config.d_model, stage.config.latent_dim, stage.config.codebook_size)
    refiner.load_state_dict(torch.load(path)["refiner"])
    refiner.eval()
    settings = {"levels 1-2 sampled, top-k 25, temperature 0.7": 0.7, "levels 1-2 sampled, top-k 25, temperature 1": 1.0}
    rows = ["mean, variance (as synthesis)", *(f"{name}, {above}" for name in settings
                                               for above in ("residual re-quantised", "the stage's codes above"))]
    books = stage.codebooks.float()

    def render(u: TokenizedUtterance, prompt: Tensor) -> dict[str, Tensor]:
        states, mean, valid, _ = stage_outputs(stage, [u], collate([u]), prompt[None], torch.tensor([prompt.shape[1]]))
        latent = match_variance(mean[0], stage.latents(prompt[None])[0]).float()
        with torch.no_grad():
            condition = refiner.condition(states, mean / stage.latent_scale)[0]
        own = residual_codes(latent, books)
        decoded = {rows[0]: own}
        for name, temperature in settings.items():
            low = sample(refiner, prompt, condition, temperature, 25, torch.Generator().manual_seed(0))
            rest = latent - sum(books[k][low[k]] for k in range(LEVELS))
            decoded[f"{name}, residual re-quantised"] = torch.cat([low, residual_codes(rest, books[LEVELS:])])
            decoded[f"{name}, the stage's codes above"] = torch.cat([low, own[LEVELS:]])
        return decoded

    judge(stage, rows, render)


if __name__ == "__main__":
    bundled = bundled_stage()
    if sys.argv[1] == "train":
        train(bundled, float(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    else:
        score(bundled, sys.argv[2])
