"""Corpus readers on tiny copies of each corpus, built in the exact layout it is distributed in."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from valle.cli import main
from valle.data.corpora import CORPUS_READERS, prepare_corpus
from valle.data.manifest import Utterance, read_manifest
from valle.errors import ConfigError, CorpusError

# --- building fixtures ------------------------------------------------------------


def write_audio(path: Path, seconds: float, sample_rate: int = 16000) -> Path:
    """A short noise burst, in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(path.name)).uniform(-0.3, 0.3, round(seconds * sample_rate)).astype(np.float32)
    soundfile.write(path, noise, sample_rate)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_libritts(subset_dir: Path) -> dict[str, tuple[str, float]]:
    """Two speakers, one wav without normalized text; returns id -> (text, duration) of the good ones."""
    expected = {}
    for i, utt in enumerate(["19_198_000000_000000", "19_198_000001_000003", "250_142276_000002_000001"]):
        speaker, chapter = utt.split("_")[:2]
        wav = write_audio(subset_dir / speaker / chapter / f"{utt}.wav", 0.2 + 0.05 * i, 24000)
        write_text(wav.with_suffix(".original.txt"), f"Chapter {i}, said Mr. Smith.")
        write_text(wav.with_suffix(".normalized.txt"), f"Chapter {i}, said Mister Smith.")
        expected[utt] = (f"Chapter {i}, said Mister Smith.", 0.2 + 0.05 * i)
    bad = write_audio(subset_dir / "19" / "198" / "19_198_000003_000000.wav", 0.1, 24000)
    write_text(bad.with_suffix(".original.txt"), "No normalized text for this one.")
    write_text(subset_dir / "19" / "198" / "19_198.trans.tsv", "not read\n")
    return expected


def make_librispeech_chapter(subset_dir: Path, speaker: str, chapter: str, n: int) -> None:
    lines = []
    for i in range(n):
        utt = f"{speaker}-{chapter}-{i:04d}"
        write_audio(subset_dir / speaker / chapter / f"{utt}.flac", 0.1 + 0.02 * i)
        lines.append(f"{utt} HE SAID {i} WORDS AND DIDN'T STOP")
    write_text(subset_dir / speaker / chapter / f"{speaker}-{chapter}.trans.txt", "\n".join(lines) + "\n")


def make_ljspeech(src: Path) -> None:
    rows = [
        ("LJ001-0001", 'He said "1st" in 1870.', 'He said "first" in eighteen seventy.'),
        ("LJ001-0002", "Dr. Lee's book, 'in part'", "Doctor Lee's book, 'in part'"),
    ]
    for i, (utt, _, _) in enumerate(rows):
        write_audio(src / "wavs" / f"{utt}.wav", 0.15 + 0.1 * i, 22050)
    write_text(src / "metadata.csv", "".join("|".join(row) + "\n" for row in rows))


def make_vctk_092(src: Path) -> None:
    """p225 with two utterances on both mics, one of them without mic2; p315 without text."""
    for utt, text in [("p225_001", "Please call Stella."), ("p225_002", "Ask her to bring these things.")]:
        write_text(src / "txt" / "p225" / f"{utt}.txt", text + "\n")
        write_audio(src / "wav48_silence_trimmed" / "p225" / f"{utt}_mic1.flac", 0.3, 48000)
    write_audio(src / "wav48_silence_trimmed" / "p225" / "p225_001_mic2.flac", 0.25, 48000)
    write_audio(src / "wav48_silence_trimmed" / "p315" / "p315_001_mic1.flac", 0.2, 48000)
    write_text(src / "speaker-info.txt", "ID  AGE  GENDER  ACCENTS  REGION\n")


def rows_by_id(path: Path) -> dict[str, Utterance]:
    return {row.id: row for row in read_manifest(path)}


def check_rows(rows: dict[str, Utterance], expected: dict[str, tuple[str, float]]) -> None:
    assert set(rows) == set(expected)
    for utt, (text, duration) in expected.items():
        assert rows[utt].text == text
        assert rows[utt].duration == pytest.approx(duration, abs=1e-3)
        assert rows[utt].audio.is_file() and rows[utt].language == "en-us"


# --- LibriTTS ---------------------------------------------------------------------


def test_libritts_writes_one_manifest_per_subset_with_normalized_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "LibriTTS"
    expected = make_libritts(src / "dev-clean")
    make_libritts(src / "test-clean")
    with caplog.at_level(logging.WARNING):
        written = prepare_corpus("libritts", src, tmp_path / "out")
    assert written == [tmp_path / "out" / "dev-clean.jsonl", tmp_path / "out" / "test-clean.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, expected)
    assert rows["250_142276_000002_000001"].speaker == "250"
    assert "skipped 1 utterance(s) without normalized text: 19_198_000003_000000" in caplog.text


def test_libritts_accepts_a_single_subset_folder(tmp_path: Path) -> None:
    expected = make_libritts(tmp_path / "LibriTTS_R" / "train-clean-100")
    written = prepare_corpus("libritts", tmp_path / "LibriTTS_R" / "train-clean-100", tmp_path / "out")
    assert written == [tmp_path / "out" / "train-clean-100.jsonl"]
    check_rows(rows_by_id(written[0]), expected)


def test_libritts_wrong_layout_names_the_expected_files(tmp_path: Path) -> None:
    write_audio(tmp_path / "src" / "19_198_000000_000000.wav", 0.1)
    with pytest.raises(CorpusError, match=r"no LibriTTS wavs under .*<subset>/<speaker>/<chapter>/.*\.normalized\.txt"):
        prepare_corpus("libritts", tmp_path / "src", tmp_path / "out")


# --- LibriSpeech ------------------------------------------------------------------


def test_librispeech_reads_transcripts_lower_cased(tmp_path: Path) -> None:
    src = tmp_path / "LibriSpeech"
    make_librispeech_chapter(src / "dev-clean", "84", "121123", 2)
    make_librispeech_chapter(src / "dev-clean", "174", "50561", 1)
    make_librispeech_chapter(src / "test-clean", "61", "70968", 1)
    written = prepare_corpus("librispeech", src, tmp_path / "out")
    assert [p.name for p in written] == ["dev-clean.jsonl", "test-clean.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, {
        "84-121123-0000": ("he said 0 words and didn't stop", 0.1),
        "84-121123-0001": ("he said 1 words and didn't stop", 0.12),
        "174-50561-0000": ("he said 0 words and didn't stop", 0.1),
    })
    assert rows["174-50561-0000"].speaker == "174"


def test_librispeech_transcript_naming_missing_audio_is_an_error(tmp_path: Path) -> None:
    make_librispeech_chapter(tmp_path / "dev-clean", "84", "121123", 2)
    (tmp_path / "dev-clean" / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.raises(CorpusError, match=r"84-121123\.trans\.txt line 2 names audio .*84-121123-0001\.flac, which does not exist"):
        prepare_corpus("librispeech", tmp_path / "dev-clean", tmp_path / "out")


def test_librispeech_wrong_layout_names_the_transcripts(tmp_path: Path) -> None:
    write_audio(tmp_path / "dev-clean" / "84" / "84-121123-0000.flac", 0.1)
    with pytest.raises(CorpusError, match=r"no LibriSpeech transcripts \(\*\.trans\.txt\) under .*is this the LibriSpeech folder"):
        prepare_corpus("librispeech", tmp_path, tmp_path / "out")


# --- LJSpeech ---------------------------------------------------------------------


def test_ljspeech_uses_the_normalized_column_and_keeps_quotes(tmp_path: Path) -> None:
    make_ljspeech(tmp_path / "LJSpeech-1.1")
    written = prepare_corpus("ljspeech", tmp_path / "LJSpeech-1.1", tmp_path / "out")
    assert written == [tmp_path / "out" / "ljspeech.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, {
        "LJ001-0001": ('He said "first" in eighteen seventy.', 0.15),
        "LJ001-0002": ("Doctor Lee's book, 'in part'", 0.25),
    })
    assert {row.speaker for row in rows.values()} == {"LJ"}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, r"no LJSpeech metadata under .*expected SRC/metadata\.csv"),
        ("", r"metadata\.csv has no rows: expected lines"),
        ("LJ001-0001|raw|normalized\nLJ001-0002|only raw\n", r"metadata\.csv line 2 has 2 field\(s\).*<id>\|<raw text>\|<normalized text>"),
        ("LJ001-0001|raw|normalized\nLJ009-0009|raw|normalized\n",
         r"metadata\.csv line 2 names audio .*LJ009-0009\.wav, which does not exist"),
    ],
)
def test_ljspeech_bad_metadata_names_the_problem(tmp_path: Path, metadata: str | None, message: str) -> None:
    write_audio(tmp_path / "wavs" / "LJ001-0001.wav", 0.1, 22050)
    if metadata is not None:
        write_text(tmp_path / "metadata.csv", metadata)
    with pytest.raises(CorpusError, match=message):
        prepare_corpus("ljspeech", tmp_path, tmp_path / "out")


# --- VCTK -------------------------------------------------------------------------


def test_vctk_092_uses_mic1_and_skips_audio_without_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_vctk_092(tmp_path / "VCTK-Corpus-0.92")
    with caplog.at_level(logging.WARNING):
        written = prepare_corpus("vctk", tmp_path / "VCTK-Corpus-0.92", tmp_path / "out")
    assert written == [tmp_path / "out" / "vctk.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, {"p225_001": ("Please call Stella.", 0.3), "p225_002": ("Ask her to bring these things.", 0.3)})
    assert rows["p225_001"].audio.name == "p225_001_mic1.flac" and rows["p225_001"].speaker == "p225"
    assert "VCTK: skipped 1 utterance(s) without text: p315_001" in caplog.text


def test_vctk_092_mic2_skips_transcripts_without_that_microphone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_vctk_092(tmp_path)
    with caplog.at_level(logging.WARNING):
        written = prepare_corpus("vctk", tmp_path, tmp_path / "out", mic="mic2")
    rows = rows_by_id(written[0])
    check_rows(rows, {"p225_001": ("Please call Stella.", 0.25)})
    assert rows["p225_001"].audio.name == "p225_001_mic2.flac"
    assert "VCTK: skipped 1 utterance(s) without audio: p225_002" in caplog.text


def test_vctk_080_layout(tmp_path: Path) -> None:
    write_text(tmp_path / "txt" / "p226" / "p226_003.txt", "Six spoons of fresh snow peas.")
    write_audio(tmp_path / "wav48" / "p226" / "p226_003.wav", 0.4, 48000)
    rows = rows_by_id(prepare_corpus("vctk", tmp_path, tmp_path / "out")[0])
    check_rows(rows, {"p226_003": ("Six spoons of fresh snow peas.", 0.4)})
    with pytest.raises(ConfigError, match="0.80 .* one microphone"):
        prepare_corpus("vctk", tmp_path, tmp_path / "out", mic="mic2")


def test_vctk_wrong_layouts_name_what_is_missing(tmp_path: Path) -> None:
    write_audio(tmp_path / "wav48" / "p226" / "p226_003.wav", 0.1)
    with pytest.raises(CorpusError, match=r"no VCTK transcripts under .*SRC/txt/<speaker>/<speaker>_<nnn>\.txt"):
        prepare_corpus("vctk", tmp_path, tmp_path / "out")
    write_text(tmp_path / "txt" / "p226" / "p226_003.txt", "Six spoons.")
    (tmp_path / "wav48" / "p226" / "p226_003.wav").rename(tmp_path / "p226_003.wav")
    with pytest.raises(CorpusError, match=r"no VCTK audio under .*SRC/wav48/<speaker>/<speaker>_<nnn>\.wav"):
        prepare_corpus("vctk", tmp_path, tmp_path / "out")
    (tmp_path / "wav48" / "p226").rmdir()
    (tmp_path / "wav48").rmdir()
    with pytest.raises(CorpusError, match=r"no VCTK audio folder under .*wav48_silence_trimmed.*release 0\.80"):
        prepare_corpus("vctk", tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown VCTK microphone 'mic3'"):
        prepare_corpus("vctk", tmp_path, tmp_path / "out", mic="mic3")


# --- folder -----------------------------------------------------------------------


def test_folder_pairs_audio_with_text_beside_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "my_voice"
    for name, seconds in [("alice/a.wav", 0.1), ("alice/b.flac", 0.2), ("bob/a.ogg", 0.3), ("bob/c.mp3", 0.5), ("intro.WAV", 0.15)]:
        audio = write_audio(src / name, seconds, 24000)
        write_text(audio.with_suffix(".txt"), f"text of {name}\n")
    write_audio(src / "bob" / "untranscribed.wav", 0.1)
    with caplog.at_level(logging.WARNING):
        written = prepare_corpus("folder", src, tmp_path / "out")
    assert written == [tmp_path / "out" / "my_voice.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, {
        "alice_a": ("text of alice/a.wav", 0.1),
        "alice_b": ("text of alice/b.flac", 0.2),
        "bob_a": ("text of bob/a.ogg", 0.3),
        "bob_c": ("text of bob/c.mp3", 0.5),
        "intro": ("text of intro.WAV", 0.15),
    })
    assert {utt: row.speaker for utt, row in rows.items()} == {
        "alice_a": "alice", "alice_b": "alice", "bob_a": "bob", "bob_c": "bob", "intro": "my_voice"}
    assert "skipped 1 utterance(s) without a .txt transcript beside the audio: bob/untranscribed.wav" in caplog.text


@pytest.mark.parametrize("header", ["", "file|text|speaker\n"])
def test_folder_metadata_csv_with_optional_header_and_speaker(tmp_path: Path, header: str) -> None:
    src = tmp_path / "clips"
    write_audio(src / "one.wav", 0.1)
    write_audio(src / "sub" / "two.wav", 0.2)
    write_text(src / "metadata.csv", header + 'one.wav|"Quoted" words.|carol\nsub/two.wav|Second one.\n')
    rows = rows_by_id(prepare_corpus("folder", src, tmp_path / "out")[0])
    check_rows(rows, {"one": ('"Quoted" words.', 0.1), "two": ("Second one.", 0.2)})  # unique names: ids are the names
    assert rows["one"].speaker == "carol" and rows["two"].speaker == "sub"


def test_folder_reads_the_synthetic_corpus_layout(tmp_path: Path) -> None:
    """What `valle data synth-corpus` writes: `<split>/<speaker>/<id>.wav` and `<split>/metadata.csv`."""
    split = tmp_path / "synth" / "train"
    lines = ["file|text|speaker"]
    for speaker in ["spk000", "spk001"]:
        write_audio(split / speaker / f"{speaker}_00000.wav", 0.2)
        lines.append(f"{speaker}/{speaker}_00000.wav|Words of {speaker}.|{speaker}")
    write_text(split / "metadata.csv", "\n".join(lines) + "\n")
    written = prepare_corpus("folder", split, tmp_path / "out")
    assert written == [tmp_path / "out" / "train.jsonl"]
    rows = rows_by_id(written[0])
    check_rows(rows, {"spk000_00000": ("Words of spk000.", 0.2), "spk001_00000": ("Words of spk001.", 0.2)})
    assert rows["spk001_00000"].speaker == "spk001"
    with pytest.raises(CorpusError, match=r"no metadata\.csv in .*synth itself, but in train: prepare each of those folders"):
        prepare_corpus("folder", tmp_path / "synth", tmp_path / "out")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, r"no audio files \(\.wav, \.flac, \.ogg, \.mp3\) and no metadata\.csv under .*<utt>\.txt beside it"),
        ("file|text|speaker\n", r"metadata\.csv has no rows: expected lines"),
        ("a.wav|text|spk|extra\n", r"metadata\.csv line 1 has 4 field\(s\)"),
        ("a.wav|text\nb.wav|more\n", r"metadata\.csv line 2 names audio .*b\.wav, which does not exist"),
        ("../a.wav|text\n", r"line 1 names '\.\./a\.wav', outside SRC"),
    ],
)
def test_folder_bad_layouts_name_the_problem(tmp_path: Path, metadata: str | None, message: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    if metadata is not None:
        write_audio(src / "a.wav", 0.1)
        write_text(src / "metadata.csv", metadata)
    with pytest.raises(CorpusError, match=message):
        prepare_corpus("folder", src, tmp_path / "out")


def test_folder_where_nothing_has_text_is_an_error(tmp_path: Path) -> None:
    write_audio(tmp_path / "src" / "a.wav", 0.1)
    with pytest.raises(CorpusError, match="every one was skipped"):
        prepare_corpus("folder", tmp_path / "src", tmp_path / "out")


# --- errors shared by all corpora -------------------------------------------------


@pytest.mark.parametrize("corpus", sorted(CORPUS_READERS))
def test_missing_src_and_file_src(tmp_path: Path, corpus: str) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        prepare_corpus(corpus, tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(CorpusError, match="is a file, not a folder"):
        prepare_corpus(corpus, write_text(tmp_path / "file.txt", "x"), tmp_path / "out")


def test_unknown_corpus_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown corpus 'timit'; choose one of libritts, librispeech, ljspeech, vctk, folder"):
        prepare_corpus("timit", tmp_path, tmp_path / "out")


def test_unreadable_audio_is_named(tmp_path: Path) -> None:
    make_ljspeech(tmp_path)
    (tmp_path / "wavs" / "LJ001-0002.wav").write_bytes(b"RIFF, but not really")
    with pytest.raises(CorpusError, match=r"cannot read audio file .*LJ001-0002\.wav \(.+\)") as error:
        prepare_corpus("ljspeech", tmp_path, tmp_path / "out")
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert not (tmp_path / "out" / "ljspeech.jsonl").exists()


# --- command line -----------------------------------------------------------------


def test_cli_prepare_writes_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_ljspeech(tmp_path / "LJSpeech-1.1")
    assert main(["data", "prepare", "ljspeech", str(tmp_path / "LJSpeech-1.1"), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'out' / 'ljspeech.jsonl'}"
    assert len(read_manifest(tmp_path / "out" / "ljspeech.jsonl")) == 2


def test_cli_prepare_bad_src_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "prepare", "ljspeech", str(tmp_path), str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: no LJSpeech metadata under") and captured.err.count("\n") == 1
