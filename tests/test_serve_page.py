"""The web page in a real headless browser: upload a prompt, synthesise, get playable audio."""

import shutil

import pytest
from page_driver import CHROMIUM, check_and_save_in_browser, clone_in_browser, serving

from valle.infer import VallE
from valle.serve import ServeConfig, create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser_ready():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"the page test needs Chromium at {CHROMIUM}: `apt-get install chromium` (the README's test command does)")


def test_page_clones_a_voice_from_an_upload_and_plays_it_as_it_streams(browser_ready, model_dir, write_wav, tmp_path):
    from conftest import speechlike

    prompt = write_wav("prompt.wav", speechlike(3.0, 16000))
    app = create_app(ServeConfig(data_dir=tmp_path / "data"), VallE.from_pretrained(model_dir))
    with serving(app) as url:
        shown = clone_in_browser(url, prompt, "a voice speaking for three seconds", "Hello from the page. It streams along.",
                                 tmp_path / "page.png")
    assert shown["errors"] == [] and shown["status"].startswith("Done: first audio after")
    assert 0 < shown["first_audio_ms"] < shown["stream_end_ms"]  # playing before the answer ended
    assert shown["duration"] > 0.2 and shown["download"].startswith("blob:") and shown["voices"] >= 4
    assert (tmp_path / "page.png").stat().st_size > 20_000
    assert not shown["languages_shown"]  # this model takes no language


def test_page_offers_the_languages_of_a_model_trained_on_several(browser_ready, polyglot_dir, write_wav, tmp_path):
    """VALL-E X: the text in Spanish, the prompt's words in English, chosen in the page's menus."""
    from conftest import POLYGLOT_LANGUAGES, speechlike

    prompt = write_wav("prompt.wav", speechlike(3.0, 16000))
    valle, asked = VallE.from_pretrained(polyglot_dir), []
    speak = valle.synthesize
    valle.synthesize = lambda *args, **options: asked.append(options) or speak(*args, **options)
    with serving(create_app(ServeConfig(data_dir=tmp_path / "data"), valle)) as url:
        shown = clone_in_browser(url, prompt, "a voice speaking for three seconds", "Hola, amigos.", stream=False,
                                 languages=("es", "en-us"))
    assert shown["errors"] == [] and shown["status"].startswith("Done:") and shown["duration"] > 0.2
    assert shown["languages_shown"] and shown["language_menus"] == list(POLYGLOT_LANGUAGES)
    assert [(o["language"], o["prompt_language"]) for o in asked] == [("es", "en-us")]


def test_page_clones_a_voice_recorded_with_the_microphone(browser_ready, model_dir, tmp_path):
    """Chromium's fake microphone: MediaRecorder's compressed audio is turned into WAV by the page."""
    app = create_app(ServeConfig(data_dir=tmp_path / "data"), VallE.from_pretrained(model_dir))
    with serving(app) as url:
        shown = clone_in_browser(url, None, "a beep now and then", "Hello from the microphone.", stream=False)
    assert shown["errors"] == [] and shown["status"].startswith("Done:") and shown["duration"] > 0.2
    assert shown["first_audio_ms"] is None  # the whole WAV at once


def test_page_checks_a_chosen_recording_before_synthesis_and_saves_it_under_its_name(browser_ready, model_dir, write_wav,
                                                                                      tmp_path):
    import numpy as np
    from conftest import speechlike

    from valle.infer.bundled import bundled_prompts

    clipped = write_wav("loud take.wav", np.clip(speechlike(4.0, 16000) * 20, -1, 1))
    app = create_app(ServeConfig(data_dir=tmp_path / "data"), VallE.from_pretrained(model_dir))
    with serving(app) as url:
        shown = check_and_save_in_browser(url, clipped, "Anna, read in the kitchen")
    first = next(iter(bundled_prompts().values()))
    assert shown["errors"] == [] and shown["first_voice"].startswith(first.description)  # the whole name, not cut
    assert "clipping" in shown["codes"] and "record with the input level lower" in shown["check"]
    assert shown["suggested_name"] == "loud take" and shown["status"] == 'Saved the voice as "Anna, read in the kitchen".'
    assert shown["voice_info"] == "Anna, read in the kitchen" and shown["selected"].startswith("Anna, read in the kitchen (saved")
