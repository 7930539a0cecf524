"""Readers of speech shipped in Debian packages, on tiny copies of each package's layout under a
temporary root: the files where Debian installs them, transcripts in the packages' own formats."""

import gzip
import logging
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from valle.cli import main
from valle.data.corpora import prepare_corpus
from valle.data.corpora.debian import DEBIAN_SOURCES, SOURCE_NAMES, prepare_debian
from valle.data.corpora.debian._common import ESPEAK_LANGUAGES, EXTRACTED, PackageMissing
from valle.data.corpora.debian.install import install_script, run_script
from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.errors import CorpusError, DependencyError

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="G.722 and GSM need ffmpeg (apt-get install ffmpeg)")

# --- building package layouts -------------------------------------------------------


def clip(path: Path, seconds: float = 0.6, sample_rate: int = 16000) -> Path:
    """Noise in the format the suffix names, different for every path (duplicates are made on purpose only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(zlib.crc32(str(path).encode())).uniform(-0.3, 0.3, round(seconds * sample_rate))
    soundfile.write(path, noise.astype(np.float32), sample_rate)
    return path


def text(path: Path, content: str, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content.encode()) if compress else content.encode())
    return path


def rows_by_id(path: Path) -> dict[str, Utterance]:
    return {row.id: row for row in read_manifest(path)}


SOUNDS = Path("usr/share/asterisk/sounds")
CORE_EN = """; Core Asterisk Sounds in English

beep: [this is a simple beep tone]
conf-locked: This conference is locked!
dictate/forhelp: press * for help, or # to exit
digits/1: one
letters/at: at [@]
silence/1: (1 second of silence)
"""


def make_asterisk(root: Path) -> None:
    """Allison's English set as 8 kHz WAV (the -wav package) with its transcripts, and Menardi's Italian set."""
    voice = root / SOUNDS / "en_US_f_Allison"
    for name in ["beep", "conf-locked", "dictate/forhelp", "digits/1", "letters/at", "silence/1", "vm-nobody"]:
        clip(voice / f"{name}.wav", 0.8, 8000)
    clip(voice / "digits/2.wav", 0.2, 8000)
    text(root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz", CORE_EN + "digits/2: two\n", compress=True)
    (root / SOUNDS / "en").symlink_to("en_US_f_Allison")  # Debian's alternatives link: the same clips again
    menardi = root / SOUNDS / "it_IT_f_Menardi"
    clip(menardi / "digits/1.wav", 0.7, 8000)
    clip(menardi / "agent-alreadyon.wav", 2.0, 8000)
    text(root / "usr/share/doc/asterisk-core-sounds-it/core-sounds-it.txt.gz",
         "\ufeff; Core Asterisk Sounds in Italian\n\ndigits/1: uno\nagent-alreadyon: Quell'operatore è già loggato.\n", compress=True)


def make_fillets(root: Path) -> None:
    game = root / "usr/share/games/fillets-ng"
    text(game / "script/briefcase/dialogs_cs.lua", (
        '\ndialogId("kuf-m-je", "font_small", "Oh no, not again...")\ndialogStr("Jé, už zase...")\n\n'
        'dialogId("kuf-v-noco", "font_big",\n    "You know.")\ndialogStr("No, co \\"naděláme\\".")\n\n'
        'dialogId("kuf-x-oba", "font_both", "Both.")\ndialogStr("Oba.")\n'))
    text(game / "script/briefcase/brief_dialogs_cs.lua", 'dialogId("kd-uvod", "font_white", "Good morning.")\ndialogStr("Dobrý den.")\n')
    text(game / "script/briefcase/dialogs_nl.lua", 'dialogId("kuf-m-je", "font_small", "Oh no")\ndialogStr("O nee.")\n')
    for name in ["kuf-m-je", "kuf-v-noco", "kuf-x-oba", "kd-uvod", "kuf-m-unknown"]:
        clip(game / f"sound/briefcase/cs/{name}.ogg", 0.7, 22050)


STAMP_TXT = "A cat.\nde.utf8=Eine Katze.\nfr.utf8=Un chat.\nnn.utf8=Ein katt.\n"


def make_tuxpaint(root: Path) -> None:
    stamps = root / "usr/share/tuxpaint/stamps"
    text(stamps / "animals/cat.txt", STAMP_TXT)
    for name in ["cat.ogg", "cat_desc.ogg", "cat_desc_fr.ogg", "cat_desc_nn.ogg", "cat_desc_ro.ogg"]:
        clip(stamps / "animals" / name, 0.7, 44100)
    text(stamps / "symbols/letters/filled/a.txt", "A\nfr.utf8=A\n")
    text(stamps / "symbols/letters/outlined/a.txt", "A\nfr.utf8=A\n")
    letter = clip(stamps / "symbols/letters/filled/a_desc_fr.ogg", 0.7, 44100)
    shutil.copy(letter, stamps / "symbols/letters/outlined/a_desc_fr.ogg")  # shipped twice


def make_festvox_ru(root: Path) -> Path:
    voice = root / "usr/share/festival/voices/russian/msu_ru_nsh_clunits"
    text(voice / "etc/txt.done.data", '( ru_0001 "Она завела, прядь волнистых вол+ос за ухо." )\n( ru_0002 "Нет записи." )\n')
    clip(voice / "wav/ru_0001.wav", 1.0)
    clip(root / "usr/share/festival/voices/english/kal_diphone/wav/kal_0001.wav", 1.0)  # reserved: never read
    return voice


def make_klettres(root: Path) -> None:
    data = root / "usr/share/klettres"
    text(data / "de/sounds.xml", """<!-- KDE EDU KLettres -->
<klettres>
  <language code="de">
    <menuitem><label>&amp;German</label></menuitem>
    <alphabet>
      <sound name="Ä" file="de/alpha/ae.ogg" />
      <sound name="B" file="de/alpha/b.ogg" />
    </alphabet>
    <syllables>
      <sound name="BUS" file="de/syllab/bus.ogg" />
      <sound name="SCH" file="de/syllab/sch.ogg" />
      <sound name="OPA" file="de/syllab/opa.ogg" />
    </syllables>
  </language>
</klettres>
""")
    clip(data / "de/alpha/ae.ogg", 0.6)
    clip(data / "de/alpha/b.ogg", 0.3)
    clip(data / "de/syllab/bus.ogg", 0.7)
    clip(data / "de/syllab/sch.ogg", 0.7)
    text(data / "nds/sounds.xml", '<klettres><language code="nds"><alphabet><sound name="A" file="nds/alpha/a.ogg"/>'
                                  '</alphabet></language></klettres>')
    clip(data / "nds/alpha/a.ogg", 0.7)


def make_ktuberling(root: Path) -> None:
    sounds = root / "usr/share/ktuberling/sounds"
    text(sounds / "en.soundtheme", '<language code="en">\n  <sound name="eye" file="en/eye.ogg" />\n'
                                   '  <sound name="egypt_camel" file="en/egypt_camel.ogg" />\n</language>\n')
    text(sounds / "de.soundtheme", '<language code="de">\n  <sound name="eye" file="de/eye.ogg" />\n</language>\n')
    clip(sounds / "en/eye.ogg", 0.6)
    clip(sounds / "en/egypt_camel.ogg", 0.7)
    clip(sounds / "de/eye.ogg", 0.6)


# --- each source ----------------------------------------------------------------------


def test_asterisk_resamples_telephone_audio_and_marks_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_asterisk(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("asterisk", tmp_path / "root", tmp_path / "out")
    rows = rows_by_id(manifest)
    assert {k: (r.text, r.speaker, r.language) for k, r in rows.items()} == {
        "en_US_f_Allison_conf-locked": ("This conference is locked!", "asterisk-Allison", "en-us"),
        "en_US_f_Allison_dictate_forhelp": ("press star for help, or pound to exit", "asterisk-Allison", "en-us"),
        "en_US_f_Allison_digits_1": ("one", "asterisk-Allison", "en-us"),
        "en_US_f_Allison_letters_at": ("at", "asterisk-Allison", "en-us"),
        "it_IT_f_Menardi_digits_1": ("uno", "asterisk-Menardi", "it"),
    }
    row = rows["en_US_f_Allison_digits_1"]
    assert row.source_rate == 8000 and row.duration == pytest.approx(0.8, abs=1e-3)
    assert row.audio == tmp_path / "out/audio/asterisk/en_US_f_Allison_digits_1.wav" and soundfile.info(row.audio).samplerate == 16000
    assert '"source_rate": 8000' in manifest.read_text()
    for reason in ["2 utterance(s) whose transcript says no words", "1 utterance(s) without a transcript of their own",
                   "1 utterance(s) missing from core-sounds-en.txt: en_US_f_Allison_vm-nobody",
                   "1 utterance(s) shorter than 0.5 s: en_US_f_Allison_digits_2"]:
        assert reason in caplog.text


def test_asterisk_without_its_transcript_package_skips_and_says_what_to_install(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_asterisk(tmp_path / "root")
    (tmp_path / "root/usr/share/doc/asterisk-core-sounds-it/core-sounds-it.txt.gz").unlink()
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("asterisk", tmp_path / "root", tmp_path / "out")
    assert not any(row.speaker == "asterisk-Menardi" for row in read_manifest(manifest))
    assert "without their transcripts, asterisk-core-sounds-it (`valle data install-sources asterisk` adds them)" in caplog.text


@needs_ffmpeg
def test_asterisk_decodes_g722_and_gsm_and_reads_unpacked_transcripts(tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "root"
    wav = clip(tmp_path / "speech.wav", 1.0, 16000)
    for output, codec in [(root / SOUNDS / "es_MX_f_Allison/digits/1.g722", ["-f", "g722"]),
                          (root / SOUNDS / "es/digits/1.gsm", ["-ar", "8000", "-f", "gsm"])]:
        output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), *codec, str(output)], check=True)
    text(root / EXTRACTED / "usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz", "digits/1: uno\n", compress=True)
    rows = rows_by_id(prepare_debian("asterisk", root, tmp_path / "out")[0])
    expected = {("asterisk-Allison", "uno", None), ("asterisk-July", "uno", 8000)}
    assert {(r.speaker, r.text, r.source_rate) for r in rows.values()} == expected
    assert all(r.duration == pytest.approx(1.0, abs=0.05) for r in rows.values())


def test_asterisk_g722_without_ffmpeg_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    text(root / SOUNDS / "en_US_f_Allison/digits/1.g722", "G.722 bytes")
    text(root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt", "digits/1: one\n")
    monkeypatch.setattr("valle.data.corpora.debian._common.shutil.which", lambda name: None)
    with pytest.raises(DependencyError, match="needs ffmpeg to decode: `apt-get install ffmpeg`"):
        prepare_debian("asterisk", root, tmp_path / "out")


def test_fillets_speakers_are_characters_per_language(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_fillets(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_corpus("fillets", tmp_path / "root", tmp_path / "out")
    rows = rows_by_id(manifest)
    assert {k: (r.text, r.speaker, r.language) for k, r in rows.items()} == {
        "cs_briefcase_kuf-m-je": ("Jé, už zase...", "fillets-cs-small", "cs"),
        "cs_briefcase_kuf-v-noco": ('No, co "naděláme".', "fillets-cs-big", "cs"),
        "cs_briefcase_kd-uvod": ("Dobrý den.", "fillets-cs-briefcase-white", "cs"),
    }
    assert "skipped 1 utterance(s) spoken by both fish at once" in caplog.text
    assert "skipped 1 utterance(s) without a dialog in script/<level>/dialogs_cs.lua: cs_briefcase_kuf-m-unknown" in caplog.text


def test_fillets_voices_without_the_scripts_name_the_package(tmp_path: Path) -> None:
    make_fillets(tmp_path / "root")
    shutil.rmtree(tmp_path / "root/usr/share/games/fillets-ng/script")
    with pytest.raises(PackageMissing, match=r"apt-get install fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl"):
        prepare_debian("fillets", tmp_path / "root", tmp_path / "out")


def test_tuxpaint_reads_descriptions_per_locale_and_drops_repeated_audio(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_tuxpaint(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("tuxpaint", tmp_path / "root", tmp_path / "out")
    rows = rows_by_id(manifest)
    assert {k: (r.text, r.speaker, r.language) for k, r in rows.items()} == {
        "animals_cat_desc": ("A cat.", "tuxpaint-en", "en-us"),
        "animals_cat_desc_fr": ("Un chat.", "tuxpaint-fr", "fr-fr"),
        "symbols_letters_filled_a_desc_fr": ("A", "tuxpaint-fr", "fr-fr"),
    }
    assert rows["animals_cat_desc"].audio == tmp_path / "root/usr/share/tuxpaint/stamps/animals/cat_desc.ogg"  # read in place
    assert rows["animals_cat_desc"].source_rate is None
    for reason in ["in a language espeak-ng cannot phonemise (nn): animals_cat_desc_nn",
                   "with no ro text in their stamp's .txt: animals_cat_desc_ro",
                   "whose audio repeats an earlier clip byte for byte: symbols_letters_outlined_a_desc_fr"]:
        assert reason in caplog.text


def test_festvox_ru_removes_stress_marks_and_never_reads_other_voices(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_festvox_ru(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("festvox-ru", tmp_path / "root", tmp_path / "out")
    [row] = read_manifest(manifest)
    assert (row.id, row.text, row.speaker, row.language) == ("ru_0001", "Она завела, прядь волнистых волос за ухо.", "festvox-ru-nsh", "ru")
    assert "skipped 1 utterance(s) without a wav: ru_0002" in caplog.text
    assert "kal" not in manifest.read_text()


def test_audio_in_reserved_speech_is_refused(tmp_path: Path) -> None:
    voice = make_festvox_ru(tmp_path / "root")
    (voice / "wav/ru_0001.wav").unlink()
    (voice / "wav/ru_0001.wav").symlink_to(tmp_path / "root/usr/share/festival/voices/english/kal_diphone/wav/kal_0001.wav")
    with pytest.raises(CorpusError, match="reserved for evaluation"):
        prepare_debian("festvox-ru", tmp_path / "root", tmp_path / "out")


def test_klettres_letters_and_syllables(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_klettres(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("klettres", tmp_path / "root", tmp_path / "out")
    rows = rows_by_id(manifest)
    assert {k: (r.text, r.speaker, r.language) for k, r in rows.items()} == {
        "klettres_de_alpha_ae": ("Ä", "klettres-de", "de"),
        "klettres_de_syllab_bus": ("bus", "klettres-de", "de"),
    }
    for reason in ["shorter than 0.5 s: klettres_de_alpha_b", "a consonant's sound, not a word (CH, TH): klettres_de_syllab_sch",
                   "listed but not installed: klettres_de_syllab_opa", "cannot phonemise (nds): klettres_nds_alpha_a"]:
        assert reason in caplog.text


def test_ktuberling_reads_english_words_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_ktuberling(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("ktuberling", tmp_path / "root", tmp_path / "out")
    assert {r.id: r.text for r in read_manifest(manifest)} == {"ktuberling_en_en_eye": "eye", "ktuberling_en_en_egypt_camel": "camel"}
    assert "1 utterance(s) in a language whose words KTuberling does not write down: ktuberling_de_de_eye" in caplog.text


# --- bad input and the whole family ---------------------------------------------------------


def test_unreadable_clip_is_a_counted_skip_with_its_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_tuxpaint(tmp_path / "root")
    broken = tmp_path / "root/usr/share/tuxpaint/stamps/animals/cat_desc_fr.ogg"
    broken.write_bytes(b"OggS, but not really")
    with caplog.at_level(logging.WARNING):
        [manifest] = prepare_debian("tuxpaint", tmp_path / "root", tmp_path / "out")
    assert "animals_cat_desc_fr" not in rows_by_id(manifest)
    assert f"tuxpaint: skipped animals_cat_desc_fr: cannot read audio file {broken}" in caplog.text
    assert "skipped 1 utterance(s) with unreadable audio: animals_cat_desc_fr" in caplog.text


@pytest.mark.parametrize("source", sorted(DEBIAN_SOURCES))
def test_empty_root_names_the_packages_to_install(tmp_path: Path, source: str) -> None:
    packages = " ".join(DEBIAN_SOURCES[source].packages)
    with pytest.raises(PackageMissing, match=rf"no {source} data under .*`apt-get install {packages}` .*dpkg-deb -x"):
        prepare_debian(source, tmp_path, tmp_path / "out")


def test_a_malformed_transcript_names_its_file(tmp_path: Path) -> None:
    make_festvox_ru(tmp_path / "root")
    text(tmp_path / "root/usr/share/festival/voices/russian/msu_ru_nsh_clunits/etc/txt.done.data", "ru_0001 no parentheses\n")
    with pytest.raises(CorpusError, match=r"txt\.done\.data line 1 is not `\( <id> \"text\" \)`"):
        prepare_debian("festvox-ru", tmp_path / "root", tmp_path / "out")


def test_debian_prepares_every_installed_source(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_tuxpaint(tmp_path / "root")
    make_ktuberling(tmp_path / "root")
    with caplog.at_level(logging.WARNING):
        written = prepare_debian("debian", tmp_path / "root", tmp_path / "out")
    assert written == [tmp_path / "out/tuxpaint.jsonl", tmp_path / "out/ktuberling.jsonl"]
    assert "debian: asterisk is not installed, left out" in caplog.text
    with pytest.raises(CorpusError, match="none of the Debian speech packages is installed .* `valle data install-sources debian`"):
        prepare_debian("debian", tmp_path, tmp_path / "out")


def test_an_interrupted_preparation_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    """A second run reuses the decoded clips a stopped one left and writes what one straight run writes."""
    make_asterisk(tmp_path / "root")
    make_tuxpaint(tmp_path / "root")
    prepare_debian("debian", tmp_path / "root", tmp_path / "straight")
    prepare_debian("debian", tmp_path / "root", tmp_path / "stopped")
    decoded = sorted((tmp_path / "stopped/audio/asterisk").iterdir())
    for path in [*decoded[::2], *(tmp_path / "stopped").glob("*.jsonl")]:  # stopped half way through decoding
        path.unlink()
    kept = {path: path.stat().st_mtime_ns for path in decoded[1::2]}
    prepare_debian("debian", tmp_path / "root", tmp_path / "stopped")

    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert files(tmp_path / "stopped") == files(tmp_path / "straight") and len(decoded) >= 4
    assert all(path.stat().st_mtime_ns == when for path, when in kept.items())  # reused, not decoded again


def test_every_language_code_is_one_espeak_ng_phonemises() -> None:
    from valle.text.g2p import phonemize, supported_languages

    assert set(ESPEAK_LANGUAGES.values()) <= set(supported_languages())
    for language in {"es-419", "it", *ESPEAK_LANGUAGES.values()}:
        assert phonemize("a", language)


def test_manifests_without_source_rate_still_read_and_rows_without_it_write_none(tmp_path: Path) -> None:
    old = text(tmp_path / "old.jsonl", '{"id": "a", "audio": "/x.wav", "text": "hi", "speaker": "s", "language": "en-us", '
                                       '"duration": 1.0}\n')
    [row] = read_manifest(old)
    assert row.source_rate is None
    write_manifest([row, Utterance("b", Path("/y.wav"), "hi", "s", source_rate=8000)], tmp_path / "new.jsonl")
    first, second = (tmp_path / "new.jsonl").read_text().splitlines()
    assert "source_rate" not in first and second.endswith('"source_rate": 8000}')
    assert [r.source_rate for r in read_manifest(tmp_path / "new.jsonl")] == [None, 8000]


# --- command line ------------------------------------------------------------------


def test_cli_prepare_defaults_to_the_system_root_and_reports_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make_ktuberling(tmp_path / "root")
    assert main(["data", "prepare", "ktuberling", str(tmp_path / "root"), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'out/ktuberling.jsonl'}: 2 utterances, 0.00 h, 1 speakers, en-us"
    monkeypatch.setattr("valle.data.corpora.debian._common.SYSTEM_ROOT", tmp_path / "root")
    assert main(["data", "prepare", "ktuberling", str(tmp_path / "out2")]) == 0
    assert (tmp_path / "out2/ktuberling.jsonl").is_file()
    assert main(["data", "prepare", "ljspeech", str(tmp_path / "out3")]) == 2
    assert "ljspeech needs SRC" in capsys.readouterr().err


def test_cli_install_sources_prints_the_apt_line(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("--print must not run anything"))
    assert main(["data", "install-sources", "debian", "--print"]) == 0
    out = capsys.readouterr().out
    assert "apt-get install -y --no-install-recommends" in out and "tuxpaint-stamps-default" in out and "ffmpeg" in out
    assert f"dpkg-deb -x \"$deb\" /{EXTRACTED}" in out and "apt-get download asterisk-core-sounds-es asterisk-core-sounds-fr" in out
    assert not any(reserved in out for reserved in ["pocketsphinx", "codec2", "festvox-kal", " festival "])
    assert install_script("tuxpaint")[-1].endswith("--no-install-recommends tuxpaint-stamps-default")
    assert set(SOURCE_NAMES) == {*DEBIAN_SOURCES, "debian"}


def test_failed_install_says_what_to_do() -> None:
    with pytest.raises(DependencyError, match=r"exit status 3.*run the command as root"):
        run_script(["exit 3"])
