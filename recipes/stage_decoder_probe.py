"""Does the codec's decoder, tuned to the frame stage's latents, give back the detail of a voice they average?

A regressed latent is the mean of what a frame might be; the codec's decoder learnt to speak real
latents, never such means. A text-to-speech system's vocoder is commonly tuned on its acoustic
model's features rendered at the true durations, so that it learns what those features lack
(Tacotron 2, FastSpeech 2 with HiFi-GAN). Here: the bundled frame stage renders each training
utterance at its aligned frames, in the voice of 3 s of another utterance of its speaker, as synthesis
does (spread moved to the prompt's, quantised by the codec's codebooks); a copy of the codec's decoder
learns to speak the real recording from those codes, by the codec's own spectral losses, the rest held
fixed. Held-out: the same losses on the validation speakers, and `score`, the zero-shot benchmark with
the tuned decoder speaking every output (recipes/tournament.md).

    python recipes/stage_decoder_probe.py train MINUTES OUT.pt [FOLDER ...]   # minutes of wall time; ARMS folders by default
    python recipes/stage_decoder_probe.py score OUT.pt [zero_shot.py options]
"""

import copy
import json
import random
import sys
import time
from pathlib import Path

import torch
from zero_shot_run import zero_shot

from valle.audio import load_audio
from valle.codec.compact import CompactCodec
from valle.codec.losses import MultiResolutionLoss
from valle.data.shards import TokenizedCorpus
from valle.infer.pipeline import VallE
from valle.model.frames import FrameModel, match_variance, quantize
from valle.train.batching import utterance_languages

ARMS = ["runs/tokens/train", "runs/tokens/mix1_human_train"] + [f"runs/tokens/synth_{lang}_train" for lang in ("bg", "de", "es", "ro")]
PROMPT_FRAMES, WINDOW, BATCH = 150, 64, 8


class Pairs:
    """Training pairs: the stage's codes of an utterance's frames, and its recording, windowed alike."""

    def __init__(self, folders: list[str], stage: FrameModel, hop: int, seed: int) -> None:
        self.stage, self.hop, self.rng = stage, hop, random.Random(seed)
        self.items, self.audio, by_speaker = [], {}, {}
        for folder in folders:
            corpus = TokenizedCorpus(folder)
            manifest = Path(json.loads((Path(folder) / "index.json").read_text())["manifest"]["path"])
            self.audio |= {row["id"]: manifest.parent / row["audio"] for row in map(json.loads, manifest.open())}
            for i, speaker in enumerate(corpus.speakers()):  # from the shards' headers: no utterance is read
                self.items.append((corpus, i))
                by_speaker.setdefault((folder, speaker), []).append(len(self.items) - 1)
        self.others = {i: group for group in by_speaker.values() if len(group) > 1 for i in group}
        self.usable = sorted(self.others)

    @torch.no_grad()
    def render(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The stage's codes `[K, T]` of utterance `index` at its aligned frames, and its recording `[T * hop]`."""
        corpus, i = self.items[index]
        u = corpus[i]
        other_corpus, j = self.items[self.rng.choice([k for k in self.others[index] if k != index])]
        prompt = other_corpus[j].codes
        start = self.rng.randrange(max(1, prompt.shape[1] - PROMPT_FRAMES + 1))
        prompt = prompt[:, start:start + PROMPT_FRAMES]
        _, text, voice = self.stage._encode(u.phonemes, prompt, utterance_languages(u, self.stage))
        path = u.alignment.clamp(max=len(u.phonemes) - 1)
        latent = self.stage._latents(text, path, voice, None)
        latent = match_variance(latent, self.stage.latents(prompt[None])[0], 1.0)
        wav = torch.from_numpy(load_audio(self.audio[u.id], 16000))
        return quantize(latent, self.stage.codebooks), wav

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        codes, wavs = [], []
        while len(codes) < size:
            c, w = self.render(self.rng.choice(self.usable))
            if c.shape[1] < WINDOW:
                continue
            a = self.rng.randrange(c.shape[1] - WINDOW + 1)
            piece = w[a * self.hop:(a + WINDOW) * self.hop]
            codes.append(c[:, a:a + WINDOW])
            wavs.append(torch.nn.functional.pad(piece, (0, WINDOW * self.hop - len(piece))))
        return torch.stack(codes), torch.stack(wavs)


def held_out_loss(codec: CompactCodec, batches: list, loss_fn: MultiResolutionLoss) -> float:
    """The spectral losses of `codec` speaking the held-out batches, summed as the codec trains on them."""
    total = 0.0
    with torch.no_grad():
        for codes, wav in batches:
            parts = loss_fn(speak(codec, codes), wav)
            total += float(parts["mel"] + parts["convergence"] + parts["log_magnitude"])
    return total / len(batches)


def speak(codec: CompactCodec, codes: torch.Tensor) -> torch.Tensor:
    """Codes `[B, K, T]` -> samples `[B, T * hop]`, as `codec.decode` but with gradients to its decoder."""
    return codec._synthesise(codec.quantizer.decode(codes))


def train(minutes: float, out: str, folders: list[str]) -> None:
    torch.manual_seed(0)
    valle = VallE.from_pretrained("default")
    stage, codec = valle.frames.float().eval(), valle.codec.float().eval()
    hop = codec.config.hop_length
    pairs = Pairs(folders, stage, hop, seed=0)
    held = Pairs(["runs/tokens/valid"], stage, hop, seed=1)
    held_batches = [held.batch(BATCH) for _ in range(4)]
    tuned = copy.deepcopy(codec)  # only its decoder learns
    decoder = tuned.decoder.train()
    loss_fn = MultiResolutionLoss(codec.config.sample_rate)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-4, betas=(0.8, 0.99), weight_decay=0.0)
    log = {"step": [0], "held_out": [held_out_loss(codec, held_batches, loss_fn)], "train": [None]}
    print(f"step 0 held-out {log['held_out'][0]:.4f} (the codec's own decoder)", flush=True)
    started, step, recent = time.monotonic(), 0, []
    while time.monotonic() - started < minutes * 60:
        codes, wav = pairs.batch(BATCH)
        parts = loss_fn(speak(tuned, codes), wav)
        loss = parts["mel"] + parts["convergence"] + parts["log_magnitude"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        step, recent = step + 1, recent + [loss.item()]
        if step % 100 == 0:
            decoder.eval()
            log["step"].append(step)
            log["held_out"].append(held_out_loss(tuned, held_batches, loss_fn))
            log["train"].append(sum(recent) / len(recent))
            decoder.train()
            recent = []
            print(f"step {step} train {log['train'][-1]:.4f} held-out {log['held_out'][-1]:.4f} "
                  f"{(time.monotonic() - started) / 60:.1f} min", flush=True)
            tmp = Path(out + ".tmp")
            torch.save({"decoder": decoder.state_dict(), "log": log}, tmp)
            tmp.replace(out)


def score(weights: str, options: list[str]) -> None:
    """The zero-shot benchmark with the tuned decoder speaking every output of the frame stage."""
    state = torch.load(weights)["decoder"]

    def speak_jobs(self, jobs, batch_size=8):
        if not hasattr(self, "_tuned"):
            self._tuned = copy.deepcopy(self.codec)
            self._tuned.decoder.load_state_dict(state)
        return [self._tuned.decode(self.render(job)[None])[0].float().cpu().numpy() for job in jobs]

    VallE.speak = torch.inference_mode()(speak_jobs)
    sys.exit(zero_shot(options))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(float(sys.argv[2]), sys.argv[3], sys.argv[4:] or ARMS)
    else:
        score(sys.argv[2], sys.argv[3:])
