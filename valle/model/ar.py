"""The autoregressive stage: a decoder-only transformer over [phonemes, audio codes].

Phonemes attend to one another in both directions; each audio position attends to
every phoneme and to the audio before it (a prefix-LM mask). Text and audio carry
positions of their own. Training is plain next-token prediction of an utterance's
codes followed by an end token; at inference the prompt's phonemes precede the
target's and the prompt's codes are the audio prefix that the model continues.

With `group_size` g > 1 (VALL-E 2's grouped code modeling) one step reads the
embeddings of g consecutive frames, concatenated, and predicts the next g frames:
g times fewer steps for the same audio. With `ar_levels` k > 1 a frame is its first k
codebook levels (their embeddings summed), and a depth decoder predicts them one after
another from the step's state (`valle.model.depth`); with k = 1 (the paper) a linear
head predicts the step's level-1 codes at once.

With `phoneme_pointer` each step is also told which phoneme it speaks: the phoneme's
input representation (as the text part reads it: embedding and position), projected,
is added to the step's input, and a small head predicts how many phonemes the next step
moves on (0 to `MAX_ADVANCE`). Training takes the pointer from alignments
(`valle data align`); generation starts it at the target's first phoneme and moves it
by the sampled advances, so the stage cannot lose its place in the text, only its
pace: it may not end before its pointer nears the last phoneme, and it ends once the
pointer moves past it. The prompt's steps get a learned "not said" vector instead, as does an utterance
trained without its text.
"""

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from valle.errors import ConfigError
from valle.model.config import ModelConfig
from valle.model.depth import DepthDecoder
from valle.model.layers import KVCache, LayerCache, TransformerLayer, lengths_to_mask
from valle.model.linear import Linear
from valle.model.stage import IGNORE, Stage, StageOutput

# choose(logits [V + 1], history of this level's codes, level) -> the next code (or EOS at level 0);
# at level ADVANCE, choose(logits [MAX_ADVANCE + 1], [], ADVANCE) -> how far a phoneme pointer moves on.
Chooser = Callable[[Tensor, list[int], int], int]
ADVANCE = -1
MAX_ADVANCE = 7  # phonemes a pointer moves on in one step, at most
NOT_SAID = -1  # a pointer for steps whose phoneme is not given (the prompt's)


def phoneme_onsets(alignment: Tensor, code_lens: Tensor) -> Tensor:
    """`[B, T]`: the frames of `alignment` `[B, T]` (each frame's phoneme) where a new phoneme starts, within each
    utterance's `code_lens` frames; a frame not told its phoneme (NOT_SAID) neither starts one nor ends one."""
    onsets = torch.zeros_like(alignment, dtype=torch.bool)
    onsets[:, 1:] = (alignment[:, 1:] != alignment[:, :-1]) & (alignment[:, :-1] >= 0) & (alignment[:, 1:] >= 0)
    return onsets & (torch.arange(alignment.shape[1], device=alignment.device)[None] < code_lens[:, None])


class ARModel(Stage):
    kind = "ar"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        d, g, v, k = config.d_model, config.group_size, config.codebook_size, config.ar_levels
        self.eos, self.bos, self.pad = v, v + 1, v + 2
        self.history_levels = k if config.history_levels is None else config.history_levels
        # Level l's token t is row l * (V + 3) + t.
        self.audio_embedding = nn.Embedding(self.history_levels * (v + 3), d // g)
        self.layers = nn.ModuleList(TransformerLayer(d, config.n_heads, config.d_ff, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        if k == 1:
            self.head = Linear(d, g * (v + 1))
        else:
            self.depth = DepthDecoder(config)
        if config.phoneme_pointer:
            self.pointer_projection = Linear(d, d)
            self.pointer_not_said = nn.Parameter(torch.zeros(d))
            self.advance_head = Linear(d, MAX_ADVANCE + 1)
        self.init_weights()
        if config.phoneme_pointer:  # a stage warm-started from one without a pointer starts by ignoring it
            nn.init.zeros_(self.pointer_projection.weight)

    # -- sequences ---------------------------------------------------------------------
    def _targets(self, codes: Tensor, code_lens: Tensor) -> Tensor:
        """`[B, n, g, k]`: each utterance's first k levels, then EOS (at level 1), then IGNORE up to a whole group."""
        g, k = self.config.group_size, self.config.ar_levels
        n = -(-(codes.shape[2] + 1) // g)
        targets = torch.full((codes.shape[0], n * g, k), IGNORE, dtype=torch.long, device=codes.device)
        for b, length in enumerate(code_lens.tolist()):
            targets[b, :length] = codes[b, :k, :length].T
            targets[b, length, 0] = self.eos
        return targets.view(codes.shape[0], n, g, k)

    def _embed_audio(self, frames: Tensor, positions: Tensor, text: Tensor | None = None,
                     pointer: Tensor | None = None) -> Tensor:
        """Frames `[B, n * g, k]` (codes or BOS/PAD) -> group embeddings `[B, n, d]` at `positions` `[B or 1, n]`.

        Only the first `history_levels` levels of each frame are read. A stage with a phoneme
        pointer adds each step's phoneme: `pointer` `[B, n]` indexes the embedded `text` `[B, P, d]`
        (NOT_SAID: none).
        """
        frames = frames[..., :self.history_levels]
        levels = torch.arange(frames.shape[2], device=frames.device) * (self.config.codebook_size + 3)
        groups = self.audio_embedding(frames + levels).sum(2).view(frames.shape[0], -1, self.config.d_model)
        x = self.audio_positions.at(groups * self.embedding_scale, positions)
        if self.config.phoneme_pointer:
            pointed = text.gather(1, pointer.clamp(min=0)[..., None].expand(-1, -1, text.shape[2]))
            x = x + torch.where(pointer[..., None] >= 0, self.pointer_projection(pointed), self.pointer_not_said)
        return x

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
    def forward(self, phonemes: Tensor, phoneme_lens: Tensor, codes: Tensor, code_lens: Tensor,
                languages: Tensor | None = None, alignment: Tensor | None = None) -> StageOutput:
        """Teacher-forced loss on the first `ar_levels` levels of `codes` `[B, K, T]` (padded) given `phonemes` `[B, P]`
        (and their `languages` `[B, P]`, for a stage that takes them; and, for a stage with a phoneme
        pointer, the `alignment` `[B, T]`: the phoneme index spoken in each frame, NOT_SAID in a
        prompt)."""
        g, k, batch = self.config.group_size, self.config.ar_levels, codes.shape[0]
        targets = self._targets(codes, code_lens)  # [B, n, g, k]
        n_groups = targets.shape[1]
        frames = targets.view(batch, -1, k).masked_fill(targets.view(batch, -1, k) == IGNORE, self.pad)
        inputs = torch.cat([torch.full((batch, g, k), self.bos, dtype=torch.long, device=codes.device), frames[:, :-g]], dim=1)
        text_kept = torch.ones(batch, dtype=torch.bool, device=codes.device)
        if self.training and self.config.text_dropout > 0:  # some utterances without their text, for guidance
            text_kept = torch.rand(batch, device=codes.device) >= self.config.text_dropout
            phoneme_lens = phoneme_lens.masked_fill(~text_kept, 0)
        if self.training and self.config.history_noise > 0:  # past frames replaced by random codes, targets kept
            noisy = (inputs < self.config.codebook_size) & (torch.rand(inputs.shape[:2], device=codes.device)[..., None]
                                                            < self.config.history_noise)
            inputs = torch.where(noisy, torch.randint_like(inputs, self.config.codebook_size), inputs)
        group_lens = torch.div(code_lens + 1 + g - 1, g, rounding_mode="floor")
        audio_positions = torch.arange(n_groups, device=codes.device)[None]
        text = self._embed_text(phonemes, languages)
        pointer = advances = None
        if self.config.phoneme_pointer:
            if alignment is None:
                raise ConfigError("this AR stage reads a phoneme pointer, so it trains on aligned data: run "
                                  "`valle data align FOLDER` on every training and validation folder")
            pointer, advances = self._training_pointer(alignment, code_lens, n_groups, text_kept)
        mask = self.prefix_mask(lengths_to_mask(phoneme_lens, phonemes.shape[1]), lengths_to_mask(group_lens, n_groups))

        def teacher_forced(history: Tensor) -> tuple[Tensor, Tensor]:  # the states and `[B, n, g, k, V + 1]` logits
            x = self.dropout(torch.cat([text, self._embed_audio(history, audio_positions, text, pointer)], dim=1))
            hidden = self._run(x, mask)[:, phonemes.shape[1]:]
            if k == 1:
                return hidden, self.head(hidden).view(batch, n_groups, g, 1, -1)
            return hidden, self.depth(hidden, frames.view(batch, n_groups, g * k)).view(batch, n_groups, g, k, -1)

        if self.training and self.config.self_feed > 0:  # some past frames are what the stage predicts from the true past
            with torch.no_grad():
                guessed = teacher_forced(inputs)[1][..., :self.config.codebook_size].argmax(-1).view(batch, -1, k)
            fed = (inputs[:, g:, :1] < self.config.codebook_size) & (
                torch.rand(batch, inputs.shape[1] - g, 1, device=codes.device) < self.config.self_feed)
            inputs = torch.cat([inputs[:, :g], torch.where(fed, guessed[:, :-g], inputs[:, g:])], dim=1)
        hidden, logits = teacher_forced(inputs)
        weights = (None if alignment is None or self.config.onset_weight == 1.0
                   else self._onset_weights(alignment, code_lens, targets))
        out = StageOutput.scored(logits, targets, torch.arange(k, device=codes.device).expand_as(targets), weights)
        return out if advances is None else out.with_advances(self.advance_head(hidden), advances)

    def _onset_weights(self, alignment: Tensor, code_lens: Tensor, targets: Tensor) -> Tensor:
        """`onset_weight` for the targets `[B, n, g, k]` of the frames where `alignment` `[B, T]` starts a new
        phoneme (within each utterance's `code_lens` frames), 1 for the others."""
        onsets = torch.zeros(alignment.shape[0], targets.shape[1] * targets.shape[2], dtype=torch.bool, device=alignment.device)
        onsets[:, :alignment.shape[1]] = phoneme_onsets(alignment, code_lens)  # the EOS and the group's rest: none
        weights = 1.0 + (self.config.onset_weight - 1.0) * onsets.to(torch.float32)
        return weights.view(*targets.shape[:3], 1).expand_as(targets)

    def _training_pointer(self, alignment: Tensor, code_lens: Tensor, n_groups: int,
                          text_kept: Tensor) -> tuple[Tensor, Tensor]:
        """Each step's phoneme `[B, n]` and how far the pointer moves after it `[B, n]` (IGNORE where nothing is
        predicted).

        A step's phoneme is that of the first frame of the group it predicts; frames aligned to
        NOT_SAID (a prompt's), and every frame of an utterance without text, give NOT_SAID. In
        training a prompt of up to half the utterance that ends where a phoneme starts is drawn
        at random as well (none in a third of the utterances), as generation continues a prompt
        at the target's first phoneme.
        """
        g, device = self.config.group_size, alignment.device
        data_groups = torch.div(code_lens + g - 1, g, rounding_mode="floor")  # groups with audio
        steps = torch.arange(n_groups, device=device)
        at = torch.minimum(steps[None] * g, (data_groups[:, None] - 1) * g).clamp(0, alignment.shape[1] - 1)
        pointer = alignment.gather(1, at).masked_fill(~text_kept[:, None], NOT_SAID)  # [B, n]
        if self.training:
            for b in range(len(code_lens)):
                if torch.rand(()) < 1 / 3:
                    continue
                half = int(data_groups[b]) // 2
                starts = ((pointer[b, 1:half + 1] != pointer[b, :half]) & (pointer[b, :half] >= 0)).nonzero()[:, 0] + 1
                if len(starts):
                    pointer[b, :int(starts[torch.randint(len(starts), ())])] = NOT_SAID
        advances = (pointer[:, 1:] - pointer[:, :-1]).clamp(0, MAX_ADVANCE)
        told = (pointer[:, :-1] >= 0) & (pointer[:, 1:] >= 0) & (steps[None, 1:] < data_groups[:, None])
        advances = torch.cat([advances.masked_fill(~told, IGNORE), torch.full_like(advances[:, :1], IGNORE)], dim=1)
        return pointer, advances

    # -- inference ---------------------------------------------------------------------
    def trim_prompt(self, prompt: Tensor) -> Tensor:
        """What the AR continues of `prompt` codes `[K', T_p]`: its first `ar_levels` levels, in whole groups.

        A group is read whole, so the oldest frames that do not fill one are dropped.
        """
        return prompt[:self.config.ar_levels, prompt.shape[1] % self.config.group_size:]

    @torch.no_grad()
    def generate(self, phonemes: Tensor, prompt: Tensor, max_frames: int, choose: Chooser,
                 languages: Tensor | None = None, guidance: float = 1.0, text_start: int = 0,
                 prompt_guidance: float = 1.0) -> Tensor:
        """Continue the `prompt` codes `[K', T_p]` (K' >= ar_levels) for `phonemes` `[P]` (prompt's + target's).

        `choose(logits [V + 1], history, level)` picks each code, level by level within a
        frame (see `valle.model.sampling`); `history` is that level's codes so far, prompt
        included. Generation stops at EOS (chosen at level 0; the upper levels never
        offer it) or after `max_frames` new frames. Returns the new codes `[ar_levels, T]`.
        `languages` `[P]`: each phoneme's language id, for a stage that takes them. `guidance` w != 1 is
        classifier-free guidance on the text: each level's logits are those given no text pushed w times
        as far as the text moves them (for a stage trained with `text_dropout`). `text_start`: the index of
        the target's first phoneme, where a phoneme pointer starts. `prompt_guidance` w != 1 is the same on
        the voice: the logits given the target's phonemes without the prompt, pushed w times as far as the
        prompt moves them (with both, each adds its push).
        """
        return self.generate_batch([phonemes], [prompt], [max_frames], [choose], [languages], [guidance],
                                   [text_start], [prompt_guidance])[0]

    def step_tokens(self, last: Tensor, pick: Callable[[int, Tensor], Tensor]) -> Tensor:
        """One step's tokens `[B, g * k]` from the AR states `last` `[B, d]`, each chosen by `pick(position, logits [B, V + 1])`."""
        if self.config.ar_levels > 1:
            return self.depth.decode(last, pick)
        logits = self.head(last).view(last.shape[0], self.config.group_size, -1)
        return torch.stack([pick(position, logits[:, position]) for position in range(self.config.group_size)], dim=1)

    @torch.no_grad()
    def generate_batch(self, phonemes: list[Tensor], prompts: list[Tensor], max_frames: list[int],
                       choose: list[Chooser], languages: list[Tensor | None] | None = None,
                       guidance: list[float] | None = None, text_starts: list[int] | None = None,
                       prompt_guidance: list[float] | None = None) -> list[Tensor]:
        """`generate` for several requests in one padded batch: one step decodes a group for each.

        Each request attends only to its own phonemes and audio, at its own positions, so it
        gets what it would get alone (up to float rounding); one that has stopped feeds
        padding until the last one stops. A decoding step costs little more for a few
        requests than for one while the weights, not the arithmetic, bound its speed.
        """
        pieces = list(self.decode_steps(phonemes, prompts, max_frames, choose, languages, guidance, text_starts,
                                        prompt_guidance))
        return [torch.cat([step[b] for step in pieces], dim=1) if pieces else
                torch.zeros(self.config.ar_levels, 0, dtype=torch.long, device=phonemes[0].device) for b in range(len(phonemes))]

    @staticmethod
    def _follow(pointer: Tensor, twin_of: list[int], shift: Tensor, phoneme_lens: Tensor) -> None:
        """Set each twin row's pointer `[rows, 1]` to its request's, less `shift` `[twins, 1]` (its text starts later);
        NOT_SAID for a twin without text."""
        if not twin_of:
            return
        batch = len(pointer) - len(twin_of)
        followed = pointer[twin_of] - shift
        pointer[batch:] = followed.masked_fill(phoneme_lens[batch:, None] == 0, NOT_SAID)

    @torch.no_grad()
    def decode_steps(self, phonemes: list[Tensor], prompts: list[Tensor], max_frames: list[int],
                     choose: list[Chooser], languages: list[Tensor | None] | None = None,
                     guidance: list[float] | None = None, text_starts: list[int] | None = None,
                     prompt_guidance: list[float] | None = None) -> Iterator[list[Tensor]]:
        """`generate_batch` step by step: after each step, every request's new frames `[ar_levels, n]` (n may be 0).

        What a streaming caller decodes while the AR stage goes on. `languages`: each request's phoneme
        language ids, or None where it says none; `guidance` and `prompt_guidance`: each request's (as for
        `generate`). With guidance, every request has a twin after the last request, without its text or
        without its prompt, fed the codes the request chooses.
        `text_starts`: each request's first target phoneme, where a phoneme pointer starts (default 0);
        the pointer then moves on by advances sampled from the stage's own prediction, the end token is
        withheld until it reaches the second-to-last phoneme, and a request ends when it moves past the last.
        """
        g, k, batch, device = self.config.group_size, self.config.ar_levels, len(phonemes), phonemes[0].device
        phonemes, prompts = list(phonemes), [self.trim_prompt(p) for p in prompts]
        languages = list(languages or [None] * batch)
        starts = list(text_starts or [0] * batch)
        twin_of: list[int] = []  # the request each twin row follows
        pushes: list[list[tuple[int, float]]] = [[] for _ in range(batch)]  # per request: (twin row, weight)
        for weights, drops_text in ((guidance, True), (prompt_guidance, False)):
            if weights is None or all(w == 1.0 for w in weights):
                continue
            for b in range(batch):
                pushes[b].append((batch + len(twin_of), weights[b]))
                twin_of.append(b)
                cut = len(phonemes[b]) if drops_text else starts[b]  # the twin's text: none, or the target's
                phonemes.append(phonemes[b][cut:])
                prompts.append(prompts[b] if drops_text else prompts[b][:, :0])
                languages.append(None if drops_text or languages[b] is None else languages[b][cut:])
            starts = starts + [0 if drops_text else starts[b] for b in range(batch)]
        twin_shift = torch.tensor(starts[batch:], device=device)[:, None]  # a twin's pointer: its request's minus this
        rows = len(phonemes)
        phoneme_lens = torch.tensor([len(p) for p in phonemes], device=device)
        group_lens = torch.tensor([1 + p.shape[1] // g for p in prompts], device=device)  # BOS group + the prompt's
        text = torch.zeros(rows, max(1, int(phoneme_lens.max())), dtype=torch.long, device=device)
        text_languages = self.no_language(text)
        frames = torch.full((rows, int(group_lens.max()) * g, k), self.pad, dtype=torch.long, device=device)
        for b, (p, prompt) in enumerate(zip(phonemes, prompts)):
            text[b, :len(p)] = p
            if languages is not None and languages[b] is not None:
                text_languages[b, :len(p)] = languages[b]
            frames[b, :g] = self.bos
            frames[b, g:g + prompt.shape[1]] = prompt.T
        text_valid = lengths_to_mask(phoneme_lens, text.shape[1])
        audio_valid = lengths_to_mask(group_lens, frames.shape[1] // g)
        audio_positions = torch.arange(audio_valid.shape[1], device=device)[None]
        embedded_text = self._embed_text(text, text_languages)
        pointer = torch.full((rows, 1), NOT_SAID, dtype=torch.long, device=device)  # each row's phoneme now
        prefill_pointer = torch.full(audio_valid.shape, NOT_SAID, dtype=torch.long, device=device)
        if self.config.phoneme_pointer:  # the prompt's steps are not told their phoneme; the last one is the target's
            # first (NOT_SAID for an empty text), and each twin follows its request
            pointer[:batch, 0] = torch.tensor([min(s, len(p) - 1) for s, p in zip(starts, phonemes[:batch])], device=device)
            self._follow(pointer, twin_of, twin_shift, phoneme_lens)
            prefill_pointer[torch.arange(rows, device=device), group_lens - 1] = pointer[:, 0]
        x = torch.cat([embedded_text, self._embed_audio(frames, audio_positions, embedded_text, prefill_pointer)], 1)
        prefill = x.shape[1]
        capacity = prefill + -(-max(max_frames) // g)  # at most one fed-back group per `g` new frames
        cache = self.new_cache(rows, capacity, x)
        hidden = self._run(x, self.prefix_mask(text_valid, audio_valid), cache)
        last = hidden[torch.arange(rows, device=device), text.shape[1] + group_lens - 1]  # each request's newest group
        prefill_valid = torch.cat([text_valid, audio_valid], dim=1)
        padded = not bool(prefill_valid.all())  # else every key is valid: no mask needed
        keys_valid = torch.ones(rows, capacity, dtype=torch.bool, device=device)
        keys_valid[:, :prefill] = prefill_valid
        positions = group_lens.clone()  # of each request's next group
        step = torch.full((rows, g, k), self.pad, dtype=torch.long, device=device)  # the frames chosen in a step
        new = [0] * batch  # frames each request completed in the current step
        generated = [0] * batch  # new frames per request
        active = [n > 0 for n in max_frames]
        stepping = list(active)  # still choosing in the current step
        histories = [[level.tolist() for level in p] for p in prompts]  # per request, per level: prompt + new codes

        def pick(position: int, logits: Tensor) -> Tensor:
            level, tokens = position % k, []
            for b in range(batch):
                if not stepping[b]:
                    tokens.append(self.pad)
                    continue
                row = logits[b]
                if pushes[b]:  # pushed (w - 1) times further from each twin's logits than the condition it lacks moves them
                    row = row + sum((w - 1.0) * (row - logits[twin]) for twin, w in pushes[b])
                if level or (self.config.phoneme_pointer and pointer[b, 0] < phoneme_lens[b] - 2):
                    row = row.clone()  # only level 0 may end the utterance, and a pointer only near its last phoneme
                    row[self.eos] = float("-inf")
                token = choose[b](row, histories[b][level], level)
                tokens.append(token)
                if token == self.eos:
                    stepping[b] = active[b] = False
                    continue
                histories[b][level].append(token)
                step[b, new[b], level] = token
                if level == k - 1:
                    new[b] += 1
                    generated[b] += 1
                    if generated[b] >= max_frames[b]:
                        stepping[b] = active[b] = False
            return torch.tensor(tokens + [tokens[b] for b in twin_of], device=device)  # a twin is fed its request's codes

        while any(active):
            stepping[:], new[:] = active, [0] * batch
            step.fill_(self.pad)
            self.step_tokens(last, pick)
            step[batch:] = step[twin_of]
            if self.config.phoneme_pointer:  # each request's pointer moves on as its chooser says; past the end, it ends
                advance_logits = self.advance_head(last[:batch]).float()
                for b in (b for b in range(batch) if active[b]):
                    pointer[b, 0] += choose[b](advance_logits[b], [], ADVANCE)
                    if pointer[b, 0] >= phoneme_lens[b]:
                        active[b] = False
                pointer[:batch] = torch.minimum(pointer[:batch], (phoneme_lens[:batch, None] - 1).clamp(min=0))
                self._follow(pointer, twin_of, twin_shift, phoneme_lens)
            yield [step[b, :new[b]].T.clone() for b in range(batch)]
            if not any(active):
                break
            mask = keys_valid[:, None, None, :cache[0].length + 1] if padded else None
            hidden = self._run(self._embed_audio(step, positions[:, None], embedded_text, pointer), mask, cache)
            last, positions = hidden[:, -1], positions + 1
