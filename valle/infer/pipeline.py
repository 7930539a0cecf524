"""Zero-shot synthesis: phonemes + a 3-second prompt -> codec codes -> waveform.

A model is either the paper's two stages or the frame stage. With the AR and NAR stages:
the prompt's transcript and the target text are phonemised together; the prompt's
level-1 codes are the audio prefix the AR stage continues (the paper's setting), and
the NAR stage sees the whole prompt. The AR length is bounded from both sides by the
prompt's speaking rate, so that no input loops until memory runs out or stops at once.
With the frame stage (`valle.model.frames`): each phoneme's duration is predicted in the
prompt's voice, and every frame's codes are rendered at once; it needs no transcript of
the prompt, whose codes give the voice, but where one is given the prompt's speaking rate
is read off it (`SamplingConfig.rate`).
Long text is split into sentences, each spoken with the same prompt, and joined with
short faded pauses. Every output carries the keyed watermark of `valle.watermark`
unless the caller turns it off explicitly.
"""

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from valle.asr import load_recognizer
from valle.codec import Codec, CodecRecord, load_codec
from valle.errors import ConfigError, TextError
from valle.files import atomic_write, read_json
from valle.infer.bundled import model_folder, resolve_prompt
from valle.infer.prompt_pick import prepare_prompt
from valle.infer.stream import StreamConfig, stream_jobs
from valle.model.aligner import FrameAligner
from valle.model.ar import ARModel, Chooser
from valle.model.frames import FrameModel, PromptMap, pitch_level
from valle.model.nar import NARModel
from valle.model.sampling import NearestInExpectation, Sampler, SamplingConfig
from valle.model.stage import Stage, TrainedOn
from valle.pitch import track_pitch
from valle.text import PhonemeTokenizer, PhonemeVocab, split_sentences
from valle.text.language import detect_language
from valle.train.align import shipped_aligner
from valle.watermark import DEFAULT_KEY, MIN_SECONDS, embed

log = logging.getLogger(__name__)
PIPELINE_FILE = "valle.json"
PAUSE_SECONDS, FADE_SECONDS = 0.15, 0.01
NOMINAL_SECONDS_PER_PHONEME = 0.08  # read English: ~12 phonemes (with word marks) per second
MAX_CONTINUATION_CHARS = 600
PROMPT_CACHE = 32  # prompts whose codes are kept


@dataclass(frozen=True)
class LengthGuard:
    """AR length bounds in multiples of the frames the prompt's speaking rate predicts."""

    min_ratio: float = 0.3
    max_ratio: float = 2.5
    margin_seconds: float = 1.0


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    prompt: str | Path | np.ndarray  # a file, a bundled prompt's name, or samples at the codec's rate
    prompt_text: str | None = None
    seed: int | None = None
    continuation: bool = False
    language: str = "en-us"  # of the text: an espeak-ng language code
    prompt_language: str | None = None  # of the prompt's words (None: detected from them, else the text's)


@dataclass
class Job:
    """One AR generation (a sentence, or a continuation) of one request, with its length bounds and sampler."""

    phonemes: torch.Tensor  # the prompt's and the target's, or the whole transcript in continuation
    prompt_codes: torch.Tensor  # [K, T_p]
    low: int
    high: int
    sampler: Sampler
    keep_prompt: bool = False  # continuation: the output starts with the prompt
    languages: torch.Tensor | None = None  # each phoneme's language id, for stages that take one
    text_start: int = 0  # the target's first phoneme: where an AR stage's phoneme pointer starts
    prompt_pitch: float | None = None  # the prompt's median log2 F0, for a frame stage told the pitch
    pace: float = 1.0  # how fast a frame stage speaks: the prompt's speaking rate against its own
    latent_map: PromptMap | None = None  # a frame stage's map toward the prompt (`prompt_map`)


@dataclass
class Synthesis:
    samples: np.ndarray
    sample_rate: int
    prompt_text: str | None  # as given or recognised; None in continuation, which needs none
    watermarked: bool

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class VallE:
    """The trained stages (AR and NAR, or the frame stage) with the codec and phoneme vocabulary they were trained on."""

    def __init__(self, ar: ARModel | None, nar: NARModel | None, codec: Codec, vocab: PhonemeVocab, codec_name: str,
                 codec_record: CodecRecord | None = None, sampling: SamplingConfig | None = None,
                 frames: FrameModel | None = None) -> None:
        paper_layout = ar is not None and nar is not None and frames is None
        if not paper_layout and (frames is None or ar is not None or nar is not None):
            raise ConfigError("a model is an AR and a NAR stage, or a frame stage alone")
        self.stages: list[Stage] = [s.eval() for s in (ar, nar, frames) if s is not None]
        self.lead = self.stages[0]  # whose config says the codes and languages the model speaks
        config = self.lead.config
        if config.n_codebooks != codec.n_codebooks or config.codebook_size != codec.codebook_size:
            raise ConfigError(f"the model speaks {config.n_codebooks} x {config.codebook_size} codes but codec "
                              f"{codec_name!r} has {codec.n_codebooks} x {codec.codebook_size}")
        if any(s.config.languages != config.languages for s in self.stages):
            raise ConfigError(f"the AR stage was trained on languages {list(config.languages)} and the NAR stage on "
                              f"{list(self.stages[-1].config.languages)}; pair stages of one training")
        self.ar, self.nar, self.frames, self.codec, self.codec_name = ar, nar, frames, codec, codec_name
        # What the stages record of their codec (a hash of its weights among it), kept when saved again.
        self.codec_record = codec_record or CodecRecord.of(codec, codec_name)
        self.tokenizer = PhonemeTokenizer(vocab)
        # The sampling chosen for this model on held-out speakers: what a synthesis uses unless it is given one.
        self.sampling = sampling or SamplingConfig()
        self.guard = LengthGuard()
        self._recognizer = None  # for prompts given without a transcript
        self._aligner: FrameAligner | None = None  # the prompt's frames to its words (`prompt_map`), loaded when first needed
        self._sounding = ~torch.tensor(vocab.silent())  # the phonemes that take at least one frame
        self._nearest: NearestInExpectation | None = None  # the NAR's chooser, made from the codebooks when first needed
        # The latest prompts' codes (and pitch_level, for a frame stage told the pitch), by a hash of their samples.
        self._prompts: dict[bytes, tuple[torch.Tensor, float | None]] = {}
        self._prompt_lock = threading.Lock()

    # -- persistence -------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "default", device: str = "cpu",
                        dtype: torch.dtype | str = torch.float32) -> "VallE":
        """A bundled model by name ("default") or a folder with `valle.json` and `ar/` and `nar/`, or `frames/`.

        `dtype=torch.bfloat16` halves the bytes that every decoding step reads, which is
        what bounds its speed at batch 1 (on GPUs and on CPUs with bfloat16 instructions);
        `dtype="auto"` takes it where `device` has those instructions (as the CLI and the
        server do). The codec always runs in float32.
        """
        directory = model_folder(name_or_dir)
        if not (directory / PIPELINE_FILE).is_file():
            raise ConfigError(f"{directory} holds no valle model ({PIPELINE_FILE} is missing); "
                              "save one with VallE.save_pretrained or give the folder that has ar/ and nar/ (or frames/)")
        pipeline = read_json(directory / PIPELINE_FILE, "model file")
        codec_name = pipeline["codec"]
        # A codec folder shipped inside the model folder, else a registered name or a path.
        folders = [directory / FrameModel.kind] if (directory / FrameModel.kind).is_dir() else [directory / "ar", directory / "nar"]
        valle = cls.from_stages(*folders, codec=directory / codec_name if (directory / codec_name).is_dir() else codec_name,
                                device=device, dtype=dtype)
        valle.codec_name = codec_name  # as saved: relative to the folder when the codec ships inside it
        valle.sampling = SamplingConfig.from_dict(pipeline.get("sampling", {}))  # none saved: the defaults
        return valle

    @classmethod
    def from_stages(cls, ar_dir: str | Path, nar_dir: str | Path | None = None, codec: str | Path | None = None,
                    device: str = "cpu", dtype: torch.dtype | str = torch.float32) -> "VallE":
        """Join two trained stages (`valle train` writes RUN/model), or take a frame stage alone (`nar_dir` None);
        the codec defaults to the one they name."""
        ar = Stage.from_pretrained(ar_dir, device, dtype)
        if nar_dir is None:
            if not isinstance(ar, FrameModel):
                raise ConfigError(f"{ar_dir} holds a {ar.kind} stage, which speaks with a NAR stage: give both")
            codec = codec if codec is not None else ar.trained_on.codec.name
            return cls(None, None, load_codec(codec, device), ar.trained_on.vocab, str(codec), ar.trained_on.codec, frames=ar)
        nar = Stage.from_pretrained(nar_dir, device, dtype)
        if not isinstance(ar, ARModel) or not isinstance(nar, NARModel):
            raise ConfigError(f"{ar_dir} holds a {ar.kind} stage and {nar_dir} a {nar.kind} stage; "
                              "give the AR stage first, then the NAR stage")
        trained_on = ar.trained_on
        if trained_on is None or trained_on != nar.trained_on:
            raise ConfigError(f"the AR and NAR stages ({ar_dir}, {nar_dir}) were trained on different vocabularies or codecs")
        codec = codec if codec is not None else trained_on.codec.name
        return cls(ar, nar, load_codec(codec, device), trained_on.vocab, str(codec), trained_on.codec)

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write the folder `from_pretrained` reads; `dtype=torch.float16` halves it (it loads back as float32)."""
        directory, trained_on = Path(directory), TrainedOn(self.tokenizer.vocab, self.codec_record)
        for stage in self.stages:
            stage.save_pretrained(directory / stage.kind, trained_on, dtype)
        with atomic_write(directory / PIPELINE_FILE) as f:
            json.dump({"codec": self.codec_name, "sampling": self.sampling.to_dict()}, f, indent=1)
        return directory

    # -- synthesis ---------------------------------------------------------------------
    @torch.inference_mode()
    def resynthesize(self, samples: np.ndarray) -> np.ndarray:
        """Samples at the codec's rate through its codes and back: the best any stage that speaks those codes can do."""
        return self._decode(self._encode(np.ascontiguousarray(samples, dtype=np.float32)))

    def _encode(self, samples: np.ndarray) -> torch.Tensor:
        """Float32 samples at the codec's rate -> codes `[K, T]`, on the stages' device."""
        return self.codec.encode(torch.from_numpy(samples)[None].to(next(self.lead.parameters()).device))[0]

    def _decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes `[K, T]` -> float32 samples at the codec's rate."""
        return self.codec.decode(codes[None])[0].float().cpu().numpy()

    def encode_prompt(self, samples: np.ndarray) -> torch.Tensor:
        """Prompt samples at the codec's rate -> codes `[K, T_p]`."""
        return self._read_prompt(samples)[0]

    def _read_prompt(self, samples: np.ndarray) -> tuple[torch.Tensor, float | None]:
        """Prompt samples -> their codes, and for a frame stage told the pitch their `pitch_level` (else None).

        A server speaks in the same few voices again and again: what the last `PROMPT_CACHE`
        prompts gave is kept, found by a hash of the samples (a few microseconds, where
        encoding costs 10-15 ms of the time to first audio, and tracking the pitch a few more).
        """
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        key = hashlib.blake2b(samples.tobytes(), digest_size=16).digest()
        with self._prompt_lock:  # the server's model threads share it
            read = self._prompts.pop(key, None)
        if read is None:
            with torch.inference_mode():
                codes = self._encode(samples)
            pitch = None
            if self.frames is not None and self.frames.config.pitch:
                pitch = pitch_level(torch.from_numpy(track_pitch(samples, self.codec.sample_rate, self.codec.frame_rate)))
            read = codes, pitch
        with self._prompt_lock:
            self._prompts[key] = read  # the newest last
            while len(self._prompts) > PROMPT_CACHE:
                self._prompts.pop(next(iter(self._prompts)))
        return read

    def length_bounds(self, prompt_frames: int, prompt_phonemes: int, target_phonemes: int) -> tuple[int, int]:
        """(min, max) new frames, from the prompt's frames per phoneme."""
        frames_per_phoneme = prompt_frames / max(1, prompt_phonemes)
        expected = target_phonemes * frames_per_phoneme
        margin = self.guard.margin_seconds * self.codec.frame_rate
        return int(self.guard.min_ratio * expected), math.ceil(self.guard.max_ratio * expected + margin)

    def continuation_bounds(self, prompt_frames: int, phonemes: int) -> tuple[int, int]:
        """(min, max) new frames when the prompt speaks an unknown part of `phonemes`: a nominal speaking rate."""
        expected = phonemes * NOMINAL_SECONDS_PER_PHONEME * self.codec.frame_rate
        margin = self.guard.margin_seconds * self.codec.frame_rate
        return (max(0, int(self.guard.min_ratio * expected) - prompt_frames),
                max(math.ceil(margin), math.ceil(self.guard.max_ratio * expected + margin) - prompt_frames))

    def plan(self, request: SynthesisRequest, sampling: SamplingConfig) -> tuple[list[Job], str | None]:
        """The AR generations a request needs (one per sentence, or one continuation) and its prompt transcript."""
        language = request.language
        self.language_ids(language, request.prompt_language or language)  # refuses an unknown language before any work
        sentences = split_sentences(request.text) if request.text.strip() else []
        if not sentences:
            raise TextError("the text is empty: give the words to speak")
        if request.continuation and self.frames is not None:
            raise ConfigError("this model (a frame stage) speaks any text in the prompt's voice but does not continue "
                              "the prompt's own words: leave out continuation")
        if request.continuation and len(request.text) > MAX_CONTINUATION_CHARS:
            raise TextError(f"continuation takes one passage of at most {MAX_CONTINUATION_CHARS} characters (got "
                            f"{len(request.text)}): it continues the prompt in one go; speak long text in the cross-sentence mode")
        if isinstance(request.prompt, np.ndarray):
            samples, prompt_text = request.prompt, request.prompt_text
        else:
            path, given_text = resolve_prompt(request.prompt, request.prompt_text)
            prompt = prepare_prompt(path, self.codec.sample_rate, given_text)
            if prompt.pick is not None:
                log.warning(prompt.describe_pick(f"prompt {path}", given_text is not None))
            samples, prompt_text = prompt.samples, prompt.text
        codes, pitch = self._read_prompt(samples)
        device, frames = codes.device, codes.shape[1]

        def sampler(i: int) -> Sampler:  # one per sentence, so that batching never changes a result
            return Sampler(sampling, None if request.seed is None else request.seed * 65536 + i)

        def languages(ids: tuple[int, int] | None, n_prompt: int, n_target: int) -> torch.Tensor | None:
            return None if ids is None else torch.tensor([ids[1]] * n_prompt + [ids[0]] * n_target, device=device)

        if request.continuation:  # one passage, the prompt's words among them: one language
            ids = self.tokenizer(" ".join(sentences), language)
            low, high = self.continuation_bounds(frames, len(ids))
            spoken = round(frames / (NOMINAL_SECONDS_PER_PHONEME * self.codec.frame_rate))  # a guess at the prompt's share
            return [Job(torch.tensor(ids, device=device), codes, low, high, sampler(0), keep_prompt=True,
                        languages=languages(self.language_ids(language, language), 0, len(ids)),
                        text_start=min(spoken, len(ids) - 1))], None
        if self.frames is not None:  # the prompt gives the voice; its words, where given, its speaking rate and map
            language_ids = self.language_ids(language, language)
            asks_words = sampling.rate or sampling.prompt_map or sampling.prompt_neighbours
            words = self._prompt_words(prompt_text, request, device) if asks_words else None
            pace = self.prompt_pace(codes, words, sampling)
            latent_map = self.prompt_map(codes, words, sampling, pitch)
            return [Job(torch.tensor(ids, device=device), codes, 0, 0, sampler(i),
                        languages=languages(language_ids, 0, len(ids)), prompt_pitch=pitch, pace=pace,
                        latent_map=latent_map)
                    for i, ids in enumerate(self.tokenizer(sentence, language) for sentence in sentences)], prompt_text
        prompt_text = prompt_text if prompt_text is not None else self._transcribe(samples)
        prompt_language = request.prompt_language or self.language_of(prompt_text, language)
        language_ids = self.language_ids(language, prompt_language)
        prompt_ids, jobs = self.tokenizer(prompt_text, prompt_language), []
        for i, sentence in enumerate(sentences):
            target_ids = self.tokenizer(sentence, language)
            low, high = self.length_bounds(frames, len(prompt_ids), len(target_ids))
            jobs.append(Job(torch.tensor(prompt_ids + target_ids, device=device), codes, low, high, sampler(i),
                            languages=languages(language_ids, len(prompt_ids), len(target_ids)),
                            text_start=len(prompt_ids)))
        return jobs, prompt_text

    def prompt_pace(self, codes: torch.Tensor, words: tuple[torch.Tensor, torch.Tensor | None] | None,
                    sampling: SamplingConfig) -> float:
        """The frame stage's pace for a prompt (codes `[K, T_p]`): its speaking rate, read off its transcript's
        `words` (`_prompt_words`; `FrameModel.prompt_pace`), to the power `sampling.rate` (1 where no transcript is
        given: none is recognised for this, the frame stage needs no words of the prompt), times `sampling.speed`."""
        if not sampling.rate or words is None:
            return sampling.speed
        phonemes, languages = words
        pace = self.frames.prompt_pace(phonemes, codes, self._sounding.to(codes.device)[phonemes], languages)
        return pace ** sampling.rate * sampling.speed

    def prompt_map(self, codes: torch.Tensor, words: tuple[torch.Tensor, torch.Tensor | None] | None,
                   sampling: SamplingConfig, prompt_pitch: float | None) -> PromptMap | None:
        """The frame stage's map of latents toward a prompt (codes `[K, T_p]`; `FrameModel.prompt_map`, its ridge weight
        1 / `sampling.prompt_map`, its share of the neighbours' residual `sampling.prompt_neighbours`), its transcript's
        `words` (`_prompt_words`) put on its frames by the aligner that ships for the codec; None where no map is asked
        for or the prompt's words are not given (none is recognised for this: the map is an extra)."""
        if not (sampling.prompt_map or sampling.prompt_neighbours):
            return None
        if words is None:
            log.info("no prompt transcript: rendering without prompt_map and prompt_neighbours, which need the prompt's words")
            return None
        phonemes, languages = words
        aligner = self._load_aligner()
        path = aligner.path(phonemes, codes.long(), ~self._sounding.to(codes.device)[phonemes]).to(codes.device)
        ridge = 1 / sampling.prompt_map if sampling.prompt_map else None
        return self.frames.prompt_map(phonemes, path, codes, languages, prompt_pitch, ridge, sampling.prompt_neighbours)

    def _prompt_words(self, prompt_text: str | None, request: SynthesisRequest,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The prompt transcript's phonemes `[P]` and their language ids (None for a model of one language); None
        without a transcript, or one with no phonemes."""
        if prompt_text is None or not prompt_text.strip():
            return None
        prompt_language = request.prompt_language or self.language_of(prompt_text, request.language)
        ids = self.tokenizer(prompt_text, prompt_language)
        if not ids:
            return None
        phonemes = torch.tensor(ids, device=device)
        language_ids = self.language_ids(request.language, prompt_language)
        return phonemes, None if language_ids is None else torch.full_like(phonemes, language_ids[1])

    def _load_aligner(self) -> FrameAligner:
        """The aligner that ships for the model's codec, refused unless each of the model's phoneme ids means the
        same phone to it."""
        if self._aligner is None:
            try:
                folder = shipped_aligner(self.codec_record)
            except ConfigError:
                raise ConfigError(f"prompt_map needs a phoneme aligner for the codes of {self.codec_name!r}, and "
                                  "aligners ship for the bundled codecs only: synthesise without prompt_map") from None
            aligner = FrameAligner.from_pretrained(folder).to(next(self.lead.parameters()).device)
            if not self.tokenizer.vocab.read_by(aligner.trained_on.vocab):
                raise ConfigError(f"the aligner in {folder} reads another phoneme vocabulary than this model's: "
                                  "synthesise without prompt_map")
            self._aligner = aligner
        return self._aligner

    def language_of(self, prompt_text: str, language: str) -> str:
        """The prompt's language when nobody said: detected from its transcript among the model's languages
        (`valle.text.language`; a variant of the text's `language`, "en-gb" for "en-us", is taken as it), else
        the text's `language`."""
        languages = self.lead.config.languages
        detected = detect_language(prompt_text, languages, language) if languages else None
        if detected is not None and detected != language:
            log.info("the prompt's words read as %s (detected; give prompt_language to choose)", detected)
        return detected or language

    def language_ids(self, language: str, prompt_language: str) -> tuple[int, int] | None:
        """The ids of the text's and the prompt's languages in the stages, or None where they take no language.

        A language the model was not trained on is refused, with the ones it knows.
        """
        if all(stage.language_embedding is None for stage in self.stages):
            return None
        return self.lead.language_id(language), self.lead.language_id(prompt_language)

    def ar_requests(self, jobs: list[Job]) -> dict[str, list]:
        """The arguments of the AR stage's batched decoding (`generate_batch`, `decode_steps`) for `jobs`."""
        return {"phonemes": [j.phonemes for j in jobs], "prompts": [j.prompt_codes for j in jobs],
                "max_frames": [j.high for j in jobs], "choose": [self._chooser(j) for j in jobs],
                "languages": [j.languages for j in jobs], "guidance": [j.sampler.config.guidance for j in jobs],
                "text_starts": [j.text_start for j in jobs], "prompt_guidance": [j.sampler.config.prompt_guidance for j in jobs]}

    @torch.inference_mode()
    def speak(self, jobs: list[Job], batch_size: int = 8) -> list[np.ndarray]:
        """Run jobs: the AR levels for `batch_size` at a time (sampled), then the NAR levels and the codec, one by one;
        or, with a frame stage, each job's durations, codes and audio."""
        if self.frames is not None:
            return [self._decode(self.render(job)) for job in jobs]
        pieces = []
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            lowers = self.ar.generate_batch(**self.ar_requests(chunk))
            for job, lower in zip(chunk, lowers):
                if lower.shape[1] == job.high:
                    log.warning("the AR stage reached the length cap (%d frames) without an end token", job.high)
                codes = self.nar.generate(job.phonemes, job.prompt_codes, lower, choose=self.nar_chooser(job),
                                          languages=job.languages)
                if job.keep_prompt:  # decoded together, the prompt and what follows join with no seam
                    codes = torch.cat([job.prompt_codes, codes], dim=1)
                pieces.append(self._decode(codes))
        return pieces

    def render(self, job: Job) -> torch.Tensor:
        """The frame stage's codes `[K, T]` for a job: its phonemes' predicted durations, then every frame at once."""
        return self.frames.generate(job.phonemes, job.prompt_codes, self._sounding.to(job.phonemes.device)[job.phonemes],
                                    job.languages, pace=job.pace, prompt_pitch=job.prompt_pitch,
                                    variance=job.sampler.config.variance, feedback=job.sampler.config.voice_feedback,
                                    latent_map=job.latent_map)

    def nar_chooser(self, job: Job) -> NearestInExpectation | None:
        """How the NAR stage picks the job's codes: None is the likeliest code (`nar_decoding="greedy"`)."""
        if job.sampler.config.nar_decoding == "greedy":
            return None
        if self._nearest is None:
            self._nearest = NearestInExpectation(self.codec.codebooks())
        return self._nearest

    def _chooser(self, job: Job) -> Chooser:
        """The job's sampler, with the end token forbidden until `job.low` new frames exist."""
        prompt_len = self.ar.trim_prompt(job.prompt_codes).shape[1]

        def choose(logits: torch.Tensor, history: list[int], level: int) -> int:
            if level == 0 and len(history) - prompt_len < job.low:
                logits = logits.clone()
                logits[self.ar.eos] = float("-inf")
            return job.sampler(logits, history, level)

        return choose

    def synthesize(self, text: str, prompt: str | Path | np.ndarray, prompt_text: str | None = None,
                   sampling: SamplingConfig | None = None, seed: int | None = None, language: str = "en-us",
                   watermark: bool = True, watermark_key: int | str = DEFAULT_KEY, continuation: bool = False,
                   batch_size: int = 8, progress: Callable[[int, int], None] | None = None,
                   prompt_language: str | None = None) -> Synthesis:
        """Speak `text` in the voice of `prompt` (a file, a bundled prompt's name, or samples at the codec's rate).

        Cross-sentence (the default, the paper's main setting): the output is `text` alone,
        sentence by sentence (`batch_size` sentences decoded at once); without `prompt_text`
        the prompt is transcribed offline (Whisper tiny.en when installed, else PocketSphinx), with a warning. `continuation=True`
        (the paper's other setting): `text` is the whole transcript of what the prompt begins
        to say, and the output is the prompt followed by the rest; no prompt transcript is
        needed. The output is watermarked with `watermark_key` unless `watermark=False`.
        `progress(done, total)` is called with the sentences spoken so far, before the first
        batch and after each. `sampling` defaults to the model's own (`self.sampling`, saved with
        it). `language` is the text's (an espeak-ng code), `prompt_language` the
        prompt's words' when they are in another (VALL-E X: the voice crosses languages); a
        multilingual model detects it from the prompt's transcript when it is not given.
        """
        request = SynthesisRequest(text, prompt, prompt_text, seed, continuation, language, prompt_language)
        return self.synthesize_many([request], sampling, watermark, watermark_key, batch_size, progress)[0]

    def synthesize_many(self, requests: list[SynthesisRequest], sampling: SamplingConfig | None = None,
                        watermark: bool = True, watermark_key: int | str = DEFAULT_KEY,
                        batch_size: int = 8, progress: Callable[[int, int], None] | None = None) -> list[Synthesis]:
        """Several requests, their sentences decoded `batch_size` at a time; each result is what `synthesize` gives."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        plans = [self.plan(r, sampling or self.sampling) for r in requests]
        every = [job for jobs, _ in plans for job in jobs]
        spoken: list[np.ndarray] = []
        for start in range(0, len(every), batch_size):
            if progress:
                progress(start, len(every))
            spoken += self.speak(every[start:start + batch_size], batch_size)
        if progress:
            progress(len(every), len(every))
        pieces = iter(spoken)
        results = []
        for jobs, prompt_text in plans:
            samples = join_with_pauses([next(pieces) for _ in jobs], self.codec.sample_rate)
            if watermark:  # the watermark needs MIN_SECONDS: a shorter clip gets trailing silence first
                samples = np.pad(samples, (0, max(0, math.ceil(MIN_SECONDS * self.codec.sample_rate) - len(samples))))
                samples = embed(samples, self.codec.sample_rate, watermark_key)
            results.append(Synthesis(samples, self.codec.sample_rate, prompt_text, watermark))
        return results

    def stream(self, text: str, prompt: str | Path | np.ndarray, prompt_text: str | None = None,
               sampling: SamplingConfig | None = None, seed: int | None = None, language: str = "en-us",
               watermark: bool = True, watermark_key: int | str = DEFAULT_KEY, continuation: bool = False,
               config: StreamConfig = StreamConfig(), batch_size: int = 8, prompt_language: str | None = None
               ) -> Iterator[np.ndarray]:
        """`synthesize` as an iterator of audio chunks (float32 at the codec's rate), the first within a few AR steps.

        The AR stage chooses the same codes as `synthesize` with the same seed and `batch_size`
        (its sentences decoded in the same batches); the upper levels and the audio are decoded a
        window at a time (see `valle.infer.stream`).
        Input is checked, and the prompt encoded, before the first chunk is asked for.
        """
        jobs, _ = self.plan(SynthesisRequest(text, prompt, prompt_text, seed, continuation, language, prompt_language),
                            sampling or self.sampling)
        fade, pause = max(1, int(FADE_SECONDS * self.codec.sample_rate)), int(PAUSE_SECONDS * self.codec.sample_rate)
        return stream_jobs(self, jobs, config, fade, pause, watermark, watermark_key, batch_size)

    def _transcribe(self, samples: np.ndarray) -> str:
        """The prompt's words by the best offline recogniser installed (Whisper tiny.en, else PocketSphinx), loaded once."""
        if self._recognizer is None:
            self._recognizer = load_recognizer("auto")
        text = self._recognizer.transcribe(samples, self.codec.sample_rate)
        if not text:
            raise TextError("no words recognised in the prompt; give its transcript with --prompt-text")
        log.warning("no prompt transcript given; recognised it offline as %r (give --prompt-text for better results)", text)
        return text


def join_with_pauses(pieces: list[np.ndarray], sample_rate: int) -> np.ndarray:
    """Concatenate with short pauses; each piece fades in and out so that no join clicks."""
    fade = max(1, int(FADE_SECONDS * sample_rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
    pause = np.zeros(int(PAUSE_SECONDS * sample_rate), dtype=np.float32)
    out = []
    for i, piece in enumerate(pieces):
        piece = piece.astype(np.float32).copy()
        n = min(fade, len(piece) // 2)
        piece[:n] *= ramp[:n]
        piece[len(piece) - n:] *= ramp[:n][::-1]
        out += [pause, piece] if i else [piece]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
