"""One trainer for both stages, from a laptop CPU to `torchrun` on many GPUs.

Batches come from tokenised shards through the duration-bucketed sampler; the loss
is the stage's own (next-token for AR, level-l prediction with a prompt cut from the
same utterance for NAR). The steps, metrics and checkpoints are the shared loop's
(`valle.train.loop`); this adds DDP, mixed precision (bf16 on CUDA), the paper's
schedule (linear warm-up then linear decay) and held-out scores. Rank 0 writes
metrics and checkpoints; a checkpoint holds everything a run depends on (weights,
optimiser, step, sampler position, every rank's random state), so `--resume`
continues exactly where the last checkpoint left off.
"""

import copy
import json
import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from valle.codec import load_codec
from valle.data.shards import JoinedCorpus, TokenizedCorpus, open_corpus
from valle.errors import ConfigError
from valle.model.config import preset
from valle.model.frames import FrameModel, Taught
from valle.model.nar import NARBatch, split_prompt
from valle.model.stage import Stage, TrainedOn
from valle.pretrained import read_config
from valle.text.vocab import PhonemeVocab
from valle.train.batching import (
    BucketBatchSampler,
    OtherUtterances,
    SamplerState,
    collate,
    collate_alignments,
    collate_pitch,
    folder_positions,
    phoneme_languages,
    read_accents,
    speaker_accents,
    voice_prompts,
)
from valle.train.config import TrainConfig
from valle.train.loop import CHECKPOINT, Loop, Settings, linear_decay
from valle.train.validate import heldout_metrics

TEXT_EMBEDDING = "text_embedding.weight"  # grows with the phoneme vocabulary (warm_start)
AUDIO_EMBEDDING = "audio_embedding.weight"  # grows with the AR's history levels (warm_start)
LANGUAGE_EMBEDDING = "language_embedding.weight"  # a row per language, copied by name (warm_start)
LATEST = "latest"  # the weights of the last checkpoint as a stage folder: a run in progress can be tried out
EMA = "ema"  # the average of the weights (`TrainConfig.ema`) at the last checkpoint, as a stage folder
KEPT = "kept"  # copies of the stage at every `TrainConfig.keep_every` steps, one folder each (`kept_stage`)
# What a resumed run may change: training longer (the decay stretches to the new end), logging differently,
# keeping an average of the weights from now on (it starts from the weights as they are), where the starting
# weights are read from (a source folder that has moved: the checkpoint's weights replace them), or where the frame
# stage's voice prompts are cut from (a copy of a run forked into arms that differ from that step on).
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every", "valid_every", "valid_utterances", "ema", "init",
                     "keep_every", "voice_prompt")


def kept_stage(run: str | Path, step: int) -> Path:
    """The folder of the stage a run kept at `step` (`TrainConfig.keep_every`)."""
    return Path(run) / KEPT / f"step-{step:06d}"


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank), joining the process group that torchrun describes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def warm_start(model: nn.Module, stage: str | Path, vocab: PhonemeVocab | None = None) -> dict[str, list[str]]:
    """Copy into `model` every tensor of the trained `stage` folder with the same name and shape.

    With the `vocab` the model will read: where the stage's vocabulary is an earlier
    version of it (its tokens a prefix of `vocab`'s, as version 1 of version 2), the text
    embedding's rows of those tokens are copied and the new phones' rows start fresh; where
    the ids mean other phones, the text embedding starts fresh. Where the AR reads more
    levels of its past frames than the stage did (`history_levels`), the stage's rows are
    copied and the new levels' rows start at zero: their embeddings are summed with the
    first levels', so the model starts out computing what the stage did. The languages' rows
    are copied by language, wherever each stands in the model's list; a language the stage
    did not know starts at zero (no language). Returns the names `copied`
    (the grown embedding among them) and those left `fresh`; refuses a source that shares no
    weight matrix (another size: only a bias or a scale would match).
    """
    source = Stage.from_pretrained(stage)
    theirs, mine = source.state_dict(), model.state_dict()
    weights = {name: theirs[name] for name, tensor in mine.items() if name in theirs and theirs[name].shape == tensor.shape}
    if vocab is not None and TEXT_EMBEDDING in mine:
        old = source.trained_on.vocab.tokens
        if not source.trained_on.vocab.read_by(vocab):  # the same id is another phone: its row would mislead
            weights.pop(TEXT_EMBEDDING, None)
        elif len(old) < len(vocab) and mine[TEXT_EMBEDDING].shape[1:] == theirs[TEXT_EMBEDDING].shape[1:]:
            weights[TEXT_EMBEDDING] = mine[TEXT_EMBEDDING].clone()
            weights[TEXT_EMBEDDING][:len(old)] = theirs[TEXT_EMBEDDING]
    if AUDIO_EMBEDDING in mine and AUDIO_EMBEDDING in theirs and AUDIO_EMBEDDING not in weights:
        old, new = theirs[AUDIO_EMBEDDING], mine[AUDIO_EMBEDDING]
        if old.shape[0] < new.shape[0] and old.shape[1:] == new.shape[1:]:
            weights[AUDIO_EMBEDDING] = torch.cat([old, old.new_zeros(new.shape[0] - old.shape[0], *old.shape[1:])])
    languages = LANGUAGE_EMBEDDING in mine and LANGUAGE_EMBEDDING in theirs
    if languages and mine[LANGUAGE_EMBEDDING].shape[1:] == theirs[LANGUAGE_EMBEDDING].shape[1:]:
        rows, known = mine[LANGUAGE_EMBEDDING].clone(), source.config.languages
        for i, language in enumerate(model.config.languages):
            if language in known:
                rows[i] = theirs[LANGUAGE_EMBEDDING][known.index(language)]
        weights[LANGUAGE_EMBEDDING] = rows
    copied = list(weights)
    if not any(mine[name].ndim >= 2 for name in copied):
        raise ConfigError(f"init: {stage} shares no weight matrix with this model (names and shapes); start from a "
                          "stage of the same preset and stage kind")
    model.load_state_dict(weights, strict=False)
    return {"copied": copied, "fresh": [name for name in mine if name not in copied]}


def run_languages(corpus: list[str], init: str | Path | None) -> tuple[str, ...]:
    """The languages a stage trained with `language_input` takes: those of the stage it starts from (`init`), so that
    a fine-tune on fewer keeps the ones it could speak, then the other languages of its `corpus`."""
    known = () if init is None else tuple(read_config(init, "trained stage", "name a stage folder")["model"].get("languages", ()))
    return known + tuple(language for language in corpus if language not in known)


def load_teacher(stage: str | Path, corpus: TokenizedCorpus | JoinedCorpus, device: torch.device) -> FrameModel:
    """A trained frame stage to teach another (`TrainConfig.teacher`), frozen, checked against the corpus's phonemes
    and codec (its latents are the student's targets)."""
    teacher = Stage.from_pretrained(stage, device)
    if not isinstance(teacher, FrameModel):
        raise ConfigError(f"teacher: {stage} holds a stage of kind {teacher.kind!r}; a teacher is a frame stage "
                          "(RUN/model of a frame stage's run)")
    if teacher.trained_on.codec.identity() != corpus.codec.identity():
        raise ConfigError(f"teacher: {stage} renders the latents of another codec ({teacher.trained_on.codec.name}) "
                          f"than the training folders' ({corpus.codec.name}); teach with a stage of their codec")
    if not teacher.trained_on.vocab.read_by(corpus.vocab):
        raise ConfigError(f"teacher: {stage} was trained on other phoneme ids than the training folders'; "
                          "tokenise them with its vocabulary, or teach with a stage trained on it")
    return teacher.requires_grad_(False)


def freeze_except(model: nn.Module, trained: list[str]) -> None:
    """Only the weights under one of the `trained` parts (a name's first words: "pitch_head", "frame_blocks.5") learn;
    a part that names no weight of the model is an error."""
    def under(name: str, part: str) -> bool:
        return name == part or name.startswith(part + ".")

    names = [name for name, _ in model.named_parameters()]
    unknown = [part for part in trained if not any(under(name, part) for name in names)]
    if unknown:
        parts = sorted({name.split(".")[0] for name in names})
        raise ConfigError(f"trained: this model has no part {', '.join(unknown)}; its parts: {', '.join(parts)}")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(any(under(name, part) for part in trained))


class Trainer(Loop):
    """The stages' part of the loop: batches from the shards, the stage's loss, DDP, mixed precision and validation."""

    shown = {"loss": "loss", "acc": "accuracy"}

    def __init__(self, config: TrainConfig, data: str | Path | list[str | Path], out: str | Path,
                 device: str | None = None, valid: str | Path | None = None) -> None:
        """`data`: one tokenised folder or several read as one; `valid`: tokenised utterances of held-out
        speakers, scored every `config.valid_every` steps and at the end."""
        self.config, self.name = config, f"training {config.stage}"
        self.rank, self.world_size, local_rank = _distributed()
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.manual_seed(config.seed)  # identical initial weights on every rank

        self.corpus = open_corpus(data if isinstance(data, list) else [data])
        self.valid = TokenizedCorpus(valid) if valid is not None and self.rank == 0 else None
        codec = self.corpus.codec
        languages = {"languages": run_languages(self.corpus.languages(), config.init)} if config.language_input else {}
        self.accent_of = read_accents(config.accents) if config.accents is not None else {}
        accents = {"accents": tuple(sorted(set(self.accent_of.values())))} if self.accent_of else {}
        sizes = {"n_phonemes": len(self.corpus.vocab), "n_codebooks": codec.n_codebooks, "codebook_size": codec.codebook_size}
        codebooks = None
        if config.stage == "frames":  # its targets are the codec's latents (an `init` or a resume brings its own)
            codebooks = load_codec(codec.name).codebooks()
            sizes["latent_dim"] = codebooks.shape[2]
        self.model_config = preset(config.preset, **sizes, **(config.model | languages | accents))
        model = Stage.kinds[config.stage](self.model_config).to(device)
        if isinstance(model, FrameModel):
            model.use_codebooks(codebooks.to(device))
        if config.init is not None:  # a resumed run's checkpoint replaces these weights again
            started = warm_start(model, config.init, self.corpus.vocab)
            if self.rank == 0:
                fresh = sorted({name.split(".")[0] for name in started["fresh"]})
                tqdm.write(f"started from {config.init}: {len(started['copied'])} tensors copied; "
                           f"fresh: {', '.join(fresh) or 'none'}")
        if config.trained:
            freeze_except(model, config.trained)
        self.teacher = load_teacher(config.teacher, self.corpus, device) if config.teacher is not None else None
        self.taught = folder_positions(self.corpus, config.teacher_data) if config.teacher is not None else None
        device_ids = [device.index] if device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(model, device_ids=device_ids) if self.world_size > 1 else model
        learning = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in learning if p.ndim >= 2]
        no_decay = [p for p in learning if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=config.learning_rate, betas=(0.9, 0.95))
        precision = config.precision if config.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
        settings = Settings(config.steps, config.log_every, config.checkpoint_every, config.grad_clip,
                            config.grad_accumulation, config.valid_every)
        super().__init__(out, settings, model, optimizer, learning, device,
                         torch.amp.GradScaler(enabled=precision == "fp16"), main=self.rank == 0)
        self.sampler = BucketBatchSampler(self.corpus.n_phonemes, self.corpus.n_frames, config.max_tokens, config.seed,
                                          self.rank, self.world_size, config.max_frames)
        self.generator = torch.Generator().manual_seed(config.seed * 7919 + self.rank)  # NAR prompts and levels
        self.max_prompt = max(1, round(config.nar_prompt_seconds * codec.frame_rate))
        self.other_utterances = OtherUtterances(self.corpus.speakers()) if config.voice_prompt == "other" else None
        # The moving average of every weight and buffer (float ones; the others are copied), when the config keeps one.
        self.average = self._weights() if config.ema else None
        self.hours = 0.0  # of training steps so far, over every resumed part of the run: curves against time
        self.tokens = 0  # in the batches of the step in progress

    # -- one step ----------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        return linear_decay(step, self.config.learning_rate, self.config.warmup_steps, self.config.steps)

    def batch_loss(self) -> tuple[Tensor, dict[str, float]]:
        positions = self.sampler.next_batch()
        items = [self.corpus[i] for i in positions]
        phonemes, phoneme_lens, codes, code_lens = (t.to(self.device) for t in collate(items))
        languages = phoneme_languages(items, self.model, phonemes.shape[1], self.device)
        self.tokens += int(phoneme_lens.sum() + code_lens.sum())
        with self.autocast:
            if self.config.stage == "frames":
                pitch = collate_pitch(items, self.model, codes.shape[2], self.device)
                prompt, prompt_lens, prompt_pitch = self.voice_prompts(positions, codes, code_lens, pitch)
                accents = speaker_accents(items, self.model, self.accent_of, self.device) if self.accent_of else None
                alignment = collate_alignments(items, self.model, codes.shape[2], self.device)
                taught = self.teach(positions, items, phonemes, phoneme_lens, code_lens, alignment, prompt, prompt_lens)
                out = self.ddp(phonemes, phoneme_lens, codes, code_lens, alignment, prompt, prompt_lens, languages, pitch,
                               prompt_pitch, accents, taught)
                hits, frames = self.model.code_hits(out.latent.detach(), codes, code_lens, levels=1)[0]
                metrics = {"accuracy": hits / frames, "latent": out.latent_loss.item(), "duration": out.duration_loss.item()}
                metrics |= {"pitch": out.pitch_loss.item()} if self.model_config.pitch else {}
                if self.accent_of:  # how often the adversary still hears the accent (chance: one in len(accents))
                    named, labelled = out.accent_hits
                    metrics |= {"accent": out.accent_loss.item()} | ({"accent_heard": named / labelled} if labelled else {})
                return out.loss, metrics | ({"code": out.code_loss.item()} if self.model_config.code_loss else {})
            if self.config.stage == "ar":
                out = self.ddp(phonemes, phoneme_lens, codes, code_lens, languages,
                               collate_alignments(items, self.model, codes.shape[2], self.device))
            else:
                prompt, prompt_lens, target, target_lens = split_prompt(codes, code_lens, self.max_prompt, self.generator)
                level = torch.randint(self.model_config.ar_levels, self.model_config.n_codebooks, (len(code_lens),),
                                      generator=self.generator).to(self.device)
                out = self.ddp(NARBatch(phonemes, phoneme_lens, prompt, prompt_lens, target, target_lens, level, languages))
        metrics = {"accuracy": out.accuracy.item()}
        if out.advances is not None:
            _, hits, n = out.advance_sums()
            metrics["accuracy_advance"] = hits / max(n, 1)
        if self.config.stage == "nar" or self.model_config.ar_levels > 1:
            metrics |= {f"accuracy_level{level + 1}": hits / n for level, (_, hits, n) in out.level_sums().items()}
        return out.loss, metrics

    def teach(self, positions: list[int], items: list, phonemes: Tensor, phoneme_lens: Tensor, code_lens: Tensor,
              alignment: Tensor | None, prompt: Tensor, prompt_lens: Tensor) -> Taught | None:
        """The `teacher`'s rendering of the batch's utterances from the `teacher_data` folders (None: none of them)."""
        if self.teacher is None or alignment is None:
            return None
        rows = self.taught[positions].to(self.device)
        if not rows.any():
            return None
        return self.teacher.teach(phonemes, phoneme_lens, code_lens, alignment, prompt, prompt_lens, rows,
                                  phoneme_languages(items, self.teacher, phonemes.shape[1], self.device),
                                  collate_pitch(items, self.teacher, alignment.shape[1], self.device))

    def voice_prompts(self, positions: list[int], codes: Tensor, code_lens: Tensor,
                      pitch: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The frame stage's prompts for the batch at `positions`, as its `voice_prompt` says (`batching.voice_prompts`)."""
        return voice_prompts(self.corpus, positions, codes, code_lens, pitch, self.model, self.max_prompt, self.generator,
                             self.other_utterances)

    def accumulating(self, last: bool) -> AbstractContextManager:
        return nullcontext() if last or self.world_size == 1 else self.ddp.no_sync()

    def train_step(self) -> dict[str, float]:
        started, self.tokens = time.perf_counter(), 0
        record = super().train_step()
        if self.average is not None:
            with torch.no_grad():
                for name, value in self.model.state_dict().items():
                    if value.is_floating_point():
                        self.average[name].lerp_(value, 1 - self.config.ema)
                    else:
                        self.average[name].copy_(value)
        seconds = time.perf_counter() - started
        self.hours += seconds / 3600
        return record | {"tokens_per_second": self.tokens * self.world_size / seconds, "epoch": self.sampler.state.epoch,
                         "hours": self.hours}

    def on_any_rank(self, flag: bool) -> bool:
        if self.world_size == 1:
            return flag
        late = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(late, op=dist.ReduceOp.MAX)
        return bool(late.item())

    # -- scores and saved state --------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Held-out metrics of the model as it is now, keys prefixed `valid_` (rank 0 only)."""
        metrics = heldout_metrics(self.model, self.valid, self.config.max_tokens, self.config.valid_utterances,
                                  self.config.nar_prompt_seconds, self.config.seed,
                                  other_prompts=self.config.voice_prompt == "other")
        return {f"valid_{key}": value for key, value in metrics.items()}

    def held_out_scores(self) -> dict[str, float] | None:
        return None if self.valid is None else {"hours": self.hours, **self.validate()}

    def save_model(self) -> None:
        self.model.save_pretrained(self.out / "model", TrainedOn(self.corpus.vocab, self.corpus.codec))

    def save_checkpoint(self) -> None:
        super().save_checkpoint()
        if self.rank == 0:
            trained_on = TrainedOn(self.corpus.vocab, self.corpus.codec)
            self.model.save_pretrained(self.out / LATEST, trained_on)
            averaged = self.averaged() if self.average is not None else None
            if averaged is not None:
                averaged.save_pretrained(self.out / EMA, trained_on)
            if self.config.keep_every and self.step % self.config.keep_every == 0:
                kept = averaged if averaged is not None else self.model
                kept.save_pretrained(kept_stage(self.out, self.step), trained_on)

    def _weights(self) -> dict[str, Tensor]:
        """A copy of the model's weights and buffers as they are now."""
        return {name: value.detach().clone() for name, value in self.model.state_dict().items()}

    def averaged(self) -> nn.Module:
        """A copy of the model holding the average of its weights."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.average)
        return model

    def _rng_states(self) -> list[dict]:
        state = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world_size == 1:
            return [state]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def state(self) -> dict:
        return super().state() | {"scaler": self.scaler.state_dict(), "hours": self.hours,
                                  "sampler": vars(self.sampler.state).copy(), "rng": self._rng_states(),
                                  "config": json.dumps(self.config.to_dict()), "world_size": self.world_size,
                                  "utterances": len(self.corpus)} | ({"average": self.average} if self.average is not None else {})

    def load_state(self, state: dict) -> None:
        path = self.out / CHECKPOINT
        # A field added since the checkpoint was written reads as its default: the run was trained with it.
        saved, now = TrainConfig().to_dict() | json.loads(state["config"]), self.config.to_dict()
        changed = sorted(k for k in saved.keys() | now.keys() if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
        if changed:
            raise ConfigError(f"{path} was written with another training config ({', '.join(changed)} differ); resume with "
                              f"the same --config and --stage (only {', '.join(RESUMABLE_CHANGES)} may change)")
        if state["world_size"] != self.world_size:
            raise ConfigError(f"{path} was written by {state['world_size']} processes; resume with as many")
        if state.get("utterances", len(self.corpus)) != len(self.corpus):  # the sampler's position would mean others
            raise ConfigError(f"{path} was trained on {state['utterances']} utterances, --data now holds "
                              f"{len(self.corpus)}; resume with the same --data folders")
        super().load_state(state)
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:  # a run that starts keeping an average starts it from the weights it resumes with
            self.average = state.get("average") or self._weights()
        self.hours = state.get("hours", 0.0)
        self.sampler.state = SamplerState(**state["sampler"])
        rng = state["rng"][self.rank]
        torch.set_rng_state(rng["torch"].cpu())
        self.generator.set_state(rng["generator"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
