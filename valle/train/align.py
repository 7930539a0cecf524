"""Frame-by-frame phoneme alignments of a tokenised corpus, by a frame classifier trained on the corpus itself.

A stage with a phoneme pointer (`ModelConfig.phoneme_pointer`) is told, at every step,
which phoneme it is speaking; in training that comes from here. The aligner
(`valle.model.aligner.FrameAligner`) learns in the classic way of HMM aligners (Viterbi
training): a classifier learns each frame's phoneme from the current alignments, the best
monotonic path through its scores gives better ones, and the next round learns from those.
The first alignments are the corpus's own where every folder has them, else a flat start
(each utterance's sounding phonemes given equal shares of its frames).
"""

import multiprocessing
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from valle.codec import CodecRecord, load_codec
from valle.config import DictConfig
from valle.data.shards import TokenizedCorpus, TokenizedUtterance, open_corpus, write_alignments
from valle.errors import ConfigError
from valle.model.aligner import AlignerConfig, FrameAligner
from valle.model.stage import IGNORE, TrainedOn
from valle.pretrained import read_config
from valle.text import PhonemeVocab
from valle.train.batching import collate


@dataclass(frozen=True)
class AlignerTraining(DictConfig):
    """How the aligner learns: `rounds` of (`epochs` over `utterances` of the corpus, then aligning them again)."""

    kind = "aligner training config"

    rounds: int = 3
    epochs: int = 2
    utterances: int = 6000  # at most, drawn from the corpus with `seed`
    batch_size: int = 32  # utterances
    learning_rate: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.rounds, self.epochs, self.utterances, self.batch_size) < 1 or self.learning_rate <= 0:
            raise ConfigError("aligner training needs rounds, epochs, utterances and batch_size >= 1 and a positive "
                              "learning_rate")


def flat_start(utterance: TokenizedUtterance, silent: Tensor) -> Tensor:
    """`[T]`: the utterance's sounding phonemes (not `silent` `[P]`) each given an equal share of its frames, in order."""
    sounding = (~silent).nonzero()[:, 0]
    if len(sounding) == 0:
        sounding = torch.arange(len(utterance.phonemes))
    frames = utterance.codes.shape[1]
    return sounding[torch.arange(frames) * len(sounding) // frames]


def _labels(utterances: list[TokenizedUtterance], paths: list[Tensor]) -> list[Tensor]:
    return [u.phonemes[p] for u, p in zip(utterances, paths)]


def _train_round(aligner: FrameAligner, utterances: list[TokenizedUtterance], labels: list[Tensor],
                 config: AlignerTraining, rng: random.Random, round_: int) -> float:
    """`config.epochs` over the utterances with these frame labels; returns the last epoch's mean loss."""
    optimizer = torch.optim.AdamW(aligner.parameters(), lr=config.learning_rate)
    order = list(range(len(utterances)))
    aligner.train()
    mean = float("nan")
    for epoch in range(config.epochs):
        rng.shuffle(order)
        batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        total = 0.0
        bar = tqdm(batches, desc=f"aligner round {round_ + 1}/{config.rounds}, epoch {epoch + 1}/{config.epochs}",
                   unit="batch", leave=False)
        for batch in bar:
            _, _, codes, code_lens = collate([utterances[i] for i in batch])
            targets = torch.full(codes.shape[::2], IGNORE, dtype=torch.long)
            for b, i in enumerate(batch):
                targets[b, :len(labels[i])] = labels[i]
            loss = F.cross_entropy(aligner(codes, code_lens).flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        mean = total / len(batches)
    aligner.eval()
    frames = torch.cat(labels)
    counts = torch.bincount(frames, minlength=aligner.config.n_phonemes).float() + 1.0
    aligner.log_prior.copy_((counts / counts.sum()).log())
    return mean


def fit_aligner(utterances: list[TokenizedUtterance], silent: Tensor, sizes: AlignerConfig,
                config: AlignerTraining = AlignerTraining(), codebooks: Tensor | None = None) -> FrameAligner:
    """A `FrameAligner` of `sizes` trained on `utterances` by `config.rounds` rounds of Viterbi training.

    `silent` `[vocabulary]`: which phoneme ids may take no frame. The first labels are the
    utterances' alignments where they all have them, else a flat start. `codebooks` `[K, V, D]`:
    the codec's vectors, which each round's classifier starts from (`FrameAligner.start_from_codebooks`).
    """
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    if all(u.alignment is not None for u in utterances):
        paths = [u.alignment.clamp(min=0) for u in utterances]
    else:
        paths = [flat_start(u, silent[u.phonemes]) for u in utterances]
    for round_ in range(config.rounds):
        aligner = FrameAligner(sizes)  # each round learns afresh from the better alignments
        if codebooks is not None:
            aligner.start_from_codebooks(codebooks)
        loss = _train_round(aligner, utterances, _labels(utterances, paths), config, rng, round_)
        paths = [aligner.path(u.phonemes, u.codes, silent[u.phonemes])
                 for u in tqdm(utterances, desc=f"aligning again (round {round_ + 1})", unit="utt", leave=False)]
        tqdm.write(f"aligner round {round_ + 1}: frame loss {loss:.3f}")
    return aligner


def train_aligner(folders: list[str | Path], out: str | Path, config: AlignerTraining = AlignerTraining(),
                  aligner_config: AlignerConfig = AlignerConfig()) -> Path:
    """Train a `FrameAligner` on at most `config.utterances` of the tokenised `folders`; save it to `out`.

    The codec the folders were tokenised with (by its name: a bundled one or a folder) gives the
    classifier its first embeddings."""
    corpus = open_corpus(list(folders))
    chosen = sorted(random.Random(config.seed).sample(range(len(corpus)), min(config.utterances, len(corpus))))
    utterances = [corpus[i] for i in tqdm(chosen, desc="reading utterances", unit="utt", leave=False)]
    sizes = AlignerConfig.from_dict(aligner_config.to_dict() | {
        "n_phonemes": len(corpus.vocab), "n_codebooks": corpus.codec.n_codebooks, "codebook_size": corpus.codec.codebook_size})
    codebooks = load_codec(corpus.codec.name).codebooks()
    aligner = fit_aligner(utterances, torch.tensor(corpus.vocab.silent()), sizes, config, codebooks)
    aligner.save_pretrained(out, TrainedOn(corpus.vocab, corpus.codec))
    return Path(out)


_worker: tuple[FrameAligner, TokenizedCorpus, Tensor] | None = None  # a worker's aligner, corpus and silent ids


def _start_worker(aligner: FrameAligner, directory: Path) -> None:
    global _worker
    torch.set_num_threads(1)
    corpus = TokenizedCorpus(directory)
    _worker = aligner, corpus, torch.tensor(corpus.vocab.silent())


def _align(position: int) -> Tensor:
    aligner, corpus, silent = _worker
    u = corpus[position]
    return aligner.path(u.phonemes, u.codes, silent[u.phonemes])


def word_starts(utterance: TokenizedUtterance, vocab: PhonemeVocab) -> list[int | None]:
    """The frame at which each word of an aligned `utterance` starts: the first frame of its first sounding phoneme
    (words are parted by the word gap "_"), None for a word the alignment gives no frame from there on."""
    silent, gap = vocab.silent(), vocab.tokens.index("_")
    firsts, new_word = [], True
    for j, phoneme in enumerate(utterance.phonemes.tolist()):
        if phoneme == gap:
            new_word = True
        elif new_word and not silent[phoneme]:
            firsts.append(j)
            new_word = False
    frames = [(utterance.alignment >= first).nonzero()[:, 0] for first in firsts]
    return [int(f[0]) if len(f) else None for f in frames]


SHIPPED = Path(__file__).parent / "pretrained"  # trained aligners that ship with the package, each for one codec


def shipped_aligner(codec: CodecRecord) -> Path:
    """The folder of the aligner that ships for `codec` (the same codec weights), or an error that says what to do."""
    for folder in sorted(SHIPPED.iterdir()) if SHIPPED.is_dir() else []:
        trained_on = read_config(folder, "phoneme aligner", "reinstall the package")["codec"]
        if CodecRecord.from_dict(trained_on).identity() == codec.identity():
            return folder
    raise ConfigError(f"no aligner ships for the codes of {codec.name} (aligners ship for the bundled codecs only): "
                      "train one with `valle data train-aligner` and give it with --aligner")


def align_corpus(directory: str | Path, aligner: str | Path | None = None, workers: int = 1) -> Path:
    """Write `alignments.safetensors` into the tokenised folder `directory`, with the aligner folder `aligner`
    (by default the one that ships for the folder's codec).

    `workers` processes (one thread each) share the utterances; the result does not depend on
    how many. Every phoneme but stress marks, word gaps and punctuation gets at least one frame.
    """
    corpus = TokenizedCorpus(directory)
    aligner = aligner or shipped_aligner(corpus.codec)
    model = FrameAligner.from_pretrained(aligner)
    vocab, codec = model.trained_on.vocab, model.trained_on.codec
    if not corpus.vocab.read_by(vocab):
        raise ConfigError(f"{aligner} was trained on another phoneme vocabulary than {directory}'s (or an earlier "
                          "version of it); train an aligner on folders of this vocabulary")
    if corpus.codec.identity() != codec.identity():
        raise ConfigError(f"{aligner} reads {codec.name} codes and {directory} holds {corpus.codec.name} codes; train "
                          "an aligner on folders of this codec")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (model, corpus.directory)) as pool:
        paths = list(tqdm(pool.imap(_align, range(len(corpus)), chunksize=8), total=len(corpus),
                          desc=f"aligning {directory}", unit="utt"))
    return write_alignments(directory, paths, source=f"{Path(aligner).resolve()} (frame aligner)")
