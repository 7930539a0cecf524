"""How much of a speaker's accent a frame stage takes from its prompt: a linear probe, scored on other speakers.

    python recipes/accent_probe.py STAGE ACCENTS.json TOKENS [SPEAKERS_PER_ACCENT] [UTTERANCES_PER_SPEAKER]

For SPEAKERS_PER_ACCENT (10) speakers of each accent in ACCENTS.json (`recipes/accent_map.py`) found in the token folder
TOKENS (aligned and pitch-tracked), UTTERANCES_PER_SPEAKER (6) utterances are rendered at their true frames and pitch,
each in the voice of at most 3 s of another of the speaker's utterances. An utterance's example is the mean over its
frames of what they took of the voice (`FrameModel.frame_states`: the voice vector plus the attention's reads), or of
the voice vector alone. A logistic regression learns the accents from half of each accent's speakers and names them for
the other half: its accuracy there is how much of an accent the voice path carries past the speaker (chance: one in the
number of accents).
"""

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from valle.data.shards import TokenizedCorpus
from valle.model import Stage
from valle.model.frames import voice_slices
from valle.train.batching import phoneme_languages


@torch.no_grad()
def examples(stage: Stage, corpus: TokenizedCorpus, positions: list[int], prompts: list[int],
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`[N, d]` each: the frames' mean of what they took of the voice, and the voice vector."""
    max_frames = round(3.0 * corpus.codec.frame_rate)
    taken, vectors = [], []
    for i, j in zip(positions, prompts):
        u, p = corpus[i], corpus[j]
        prompt, prompt_lens, _ = voice_slices(p.codes[None], torch.tensor([p.codes.shape[1]]), max_frames, generator)
        text = stage.encode_text(u.phonemes[None], torch.tensor([len(u.phonemes)]),
                                 phoneme_languages([u], stage, len(u.phonemes)))
        voice = stage.encode_voice(prompt, prompt_lens)
        x, valid = stage.frame_inputs(text, u.alignment[None], torch.tensor([u.codes.shape[1]]))
        _, took = stage.frame_states(x, valid, voice, u.pitch[None] if stage.config.pitch else None)
        taken.append(took[0].mean(0))
        vectors.append(voice.vector[0])
    return torch.stack(taken), torch.stack(vectors)


def probe_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                   classes: int) -> float:
    """A logistic regression on standardised features, learnt on `train`, its accuracy on `test`."""
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    train, test = (train - mean) / std, (test - mean) / std
    weight = torch.zeros(train.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train @ weight + bias, train_labels) + 1e-2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(((test @ weight + bias).argmax(1) == test_labels).float().mean())


def main(stage_dir: str, accents_file: str, tokens: str, per_accent: int = 10, per_speaker: int = 6) -> None:
    torch.set_num_threads(1)
    stage = Stage.from_pretrained(stage_dir).eval()
    accent_of = json.loads(Path(accents_file).read_text())
    corpus = TokenizedCorpus(tokens)
    by_speaker: dict[str, list[int]] = {}
    for i, speaker in enumerate(corpus.speakers()):
        if speaker in accent_of:
            by_speaker.setdefault(speaker, []).append(i)
    names = sorted(set(accent_of.values()))
    generator = torch.Generator().manual_seed(0)
    split: dict[str, list] = {"learn": [], "name": []}
    for accent in names:
        speakers = sorted(s for s in by_speaker if accent_of[s] == accent and len(by_speaker[s]) > per_speaker)[:per_accent]
        for k, speaker in enumerate(speakers):
            utterances = by_speaker[speaker]
            for n in range(per_speaker):
                split["learn" if k % 2 == 0 else "name"].append((utterances[n], utterances[-1 - n], names.index(accent)))
    features = {}
    for part, rows in split.items():
        taken, vectors = examples(stage, corpus, [r[0] for r in rows], [r[1] for r in rows], generator)
        features[part] = taken, vectors, torch.tensor([r[2] for r in rows])
    learn, name = features["learn"], features["name"]
    print(f"{stage_dir}: {len(split['learn'])} utterances to learn from, {len(split['name'])} of other speakers to name, "
          f"{len(names)} accents (chance {1 / len(names):.3f})")
    for k, what in enumerate(("voice vector and attention reads", "voice vector alone")):
        print(f"  {what}: accuracy {probe_accuracy(learn[k], learn[2], name[k], name[2], len(names)):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:]))
