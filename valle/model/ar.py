"""The autoregressive stage: a decoder-only transformer over [phonemes, level-1 codes].

Phonemes attend to one another in both directions; each audio position attends to
every phoneme and to the audio before it (a prefix-LM mask). Text and audio carry
positions of their own. Training is plain next-token prediction of an utterance's
level-1 codes followed by an end token; at inference the prompt's phonemes precede
the target's and the prompt's codes are the audio prefix that the model continues.

With `group_size` g > 1 (VALL-E 2's grouped code modeling) one step reads the
embeddings of g consecutive codes, concatenated, and predicts the next g codes:
g times fewer steps for the same audio.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle.model.config import ModelConfig
from valle.model.layers import (
    KVCache,
    LayerCache,
    SinusoidalPositions,
    TransformerLayer,
    init_weights,
    lengths_to_mask,
    top_k_accuracy,
)
from valle.model.linear import Linear

IGNORE = -100


@dataclass
class StageOutput:
    loss: Tensor
    accuracy: Tensor  # top-10
    logits: Tensor


class ARModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, g, v = config.d_model, config.group_size, config.codebook_size
        self.eos, self.bos, self.pad = v, v + 1, v + 2
        self.text_embedding = nn.Embedding(config.n_phonemes, d)
        self.audio_embedding = nn.Embedding(v + 3, d // g)
        self.text_positions = SinusoidalPositions(d)
        self.audio_positions = SinusoidalPositions(d)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(TransformerLayer(d, config.n_heads, config.d_ff, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = Linear(d, g * (v + 1))
        self.apply(init_weights)

    # -- sequences ---------------------------------------------------------------------
    def _targets(self, codes: Tensor, code_lens: Tensor) -> Tensor:
        """`[B, n, g]`: each utterance's codes, then EOS, then IGNORE up to a whole group."""
        g = self.config.group_size
        n = -(-(codes.shape[1] + 1) // g)
        targets = torch.full((codes.shape[0], n * g), IGNORE, dtype=torch.long, device=codes.device)
        for b, length in enumerate(code_lens.tolist()):
            targets[b, :length] = codes[b, :length]
            targets[b, length] = self.eos
        return targets.view(codes.shape[0], n, g)

    def _embed_audio(self, tokens: Tensor, offset: int = 0) -> Tensor:
        """Tokens `[B, n * g]` -> group embeddings `[B, n, d]` with positions from `offset`."""
        batch = tokens.shape[0]
        groups = self.audio_embedding(tokens).view(batch, -1, self.config.d_model)
        return self.audio_positions(groups, offset)

    def _run(self, x: Tensor, mask: Tensor | None, cache: KVCache | None = None) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, cache=cache[i] if cache else None)
        return self.norm(x)

    def new_cache(self, batch: int, capacity: int, like: Tensor) -> KVCache:
        """An empty KV cache for `batch` sequences of up to `capacity` positions (dtype/device of `like`)."""
        c = self.config
        return [LayerCache(batch, c.n_heads, capacity, c.d_model // c.n_heads, like) for _ in self.layers]

    @staticmethod
    def prefix_mask(text_valid: Tensor, audio_valid: Tensor) -> Tensor:
        """`[B, 1, L, L]`: text sees valid text; audio sees valid text and earlier valid audio.

        Every position also sees itself, so padding rows never attend to nothing (NaN).
        """
        batch, p = text_valid.shape
        n = audio_valid.shape[1]
        length = p + n
        is_text = torch.arange(length, device=text_valid.device) < p
        causal = torch.ones(length, length, dtype=torch.bool, device=text_valid.device).tril()
        structure = is_text[None, :] | (~is_text[:, None] & ~is_text[None, :] & causal)
        key_valid = torch.cat([text_valid, audio_valid], dim=1)
        allowed = structure[None] & key_valid[:, None, :]
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=text_valid.device)[None]
        return allowed[:, None]

    # -- training ----------------------------------------------------------------------
    def forward(self, phonemes: Tensor, phoneme_lens: Tensor, codes: Tensor, code_lens: Tensor) -> StageOutput:
        """Teacher-forced loss on level-1 `codes` `[B, T]` (padded) given `phonemes` `[B, P]`."""
        g, batch = self.config.group_size, codes.shape[0]
        targets = self._targets(codes, code_lens)  # [B, n, g]
        inputs = torch.cat([torch.full((batch, g), self.bos, dtype=torch.long, device=codes.device),
                            targets.view(batch, -1)[:, :-g]], dim=1)
        inputs = inputs.masked_fill(inputs == IGNORE, self.pad)
        n_groups = targets.shape[1]
        group_lens = torch.div(code_lens + 1 + g - 1, g, rounding_mode="floor")
        text = self.text_positions(self.text_embedding(phonemes))
        x = self.dropout(torch.cat([text, self._embed_audio(inputs)], dim=1))
        mask = self.prefix_mask(lengths_to_mask(phoneme_lens, phonemes.shape[1]), lengths_to_mask(group_lens, n_groups))
        hidden = self._run(x, mask)
        logits = self.head(hidden[:, phonemes.shape[1]:]).view(batch, n_groups, g, -1)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
        return StageOutput(loss, top_k_accuracy(logits, targets, 10, IGNORE), logits)

    # -- inference ---------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, phonemes: Tensor, prompt: Tensor, max_frames: int,
                 choose: Callable[[Tensor, list[int]], int]) -> Tensor:
        """Continue the level-1 `prompt` codes `[T_p]` for `phonemes` `[P]` (prompt's + target's).

        `choose(logits [V + 1], history)` picks each token (see `valle.model.sampling`);
        generation stops at EOS or after `max_frames` new frames. Returns the new codes.
        """
        return self.generate_batch([phonemes], [prompt], [max_frames], [choose])[0]

    @torch.no_grad()
    def generate_batch(self, phonemes: list[Tensor], prompts: list[Tensor], max_frames: list[int],
                       choose: list[Callable[[Tensor, list[int]], int]]) -> list[Tensor]:
        """`generate` for several requests in one padded batch: one step decodes a group for each.

        Each request attends only to its own phonemes and audio, at its own positions, so it
        gets what it would get alone (up to float rounding); one that has stopped feeds
        padding until the last one stops. A decoding step costs little more for a few
        requests than for one while the weights, not the arithmetic, bound its speed.
        """
        g, batch, device = self.config.group_size, len(phonemes), phonemes[0].device
        prompts = [p[p.shape[0] % g:] for p in prompts]  # whole groups only: drop the oldest frames
        phoneme_lens = torch.tensor([len(p) for p in phonemes], device=device)
        group_lens = torch.tensor([1 + len(p) // g for p in prompts], device=device)  # BOS group + the prompt's
        text = torch.zeros(batch, int(phoneme_lens.max()), dtype=torch.long, device=device)
        tokens = torch.full((batch, int(group_lens.max()) * g), self.pad, dtype=torch.long, device=device)
        for b, (p, prompt) in enumerate(zip(phonemes, prompts)):
            text[b, :len(p)] = p
            tokens[b, :g] = self.bos
            tokens[b, g:g + len(prompt)] = prompt
        text_valid = lengths_to_mask(phoneme_lens, text.shape[1])
        audio_valid = lengths_to_mask(group_lens, tokens.shape[1] // g)
        x = torch.cat([self.text_positions(self.text_embedding(text)), self._embed_audio(tokens)], dim=1)
        prefill = x.shape[1]
        capacity = prefill + -(-max(max_frames) // g)  # at most one fed-back group per `g` new frames
        cache = self.new_cache(batch, capacity, x)
        hidden = self._run(x, self.prefix_mask(text_valid, audio_valid), cache)
        last = hidden[torch.arange(batch, device=device), text.shape[1] + group_lens - 1]  # each request's newest group
        prefill_valid = torch.cat([text_valid, audio_valid], dim=1)
        padded = not bool(prefill_valid.all())  # else every key is valid: no mask needed
        keys_valid = torch.ones(batch, capacity, dtype=torch.bool, device=device)
        keys_valid[:, :prefill] = prefill_valid
        positions = group_lens.clone()  # of each request's next group
        histories = [p.tolist() for p in prompts]
        generated: list[list[int]] = [[] for _ in range(batch)]
        active = [n > 0 for n in max_frames]
        while any(active):
            logits = self.head(last).view(batch, g, -1)
            groups = []
            for b in range(batch):
                group: list[int] = []
                if active[b]:
                    for position in range(g):
                        token = choose[b](logits[b, position], histories[b] + generated[b] + group)
                        if token == self.eos:
                            active[b] = False
                            break
                        group.append(token)
                    generated[b] += group
                    active[b] = active[b] and len(generated[b]) < max_frames[b]
                groups.append(group + [self.pad] * (g - len(group)))
            if not any(active):
                break
            step = self.audio_embedding(torch.tensor(groups, device=device)).view(batch, 1, self.config.d_model)
            mask = keys_valid[:, None, None, :cache[0].length + 1] if padded else None
            hidden = self._run(self.audio_positions.at(step, positions[:, None]), mask, cache)
            last, positions = hidden[:, -1], positions + 1
        return [torch.tensor(codes[:limit], dtype=torch.long, device=device) for codes, limit in zip(generated, max_frames)]
