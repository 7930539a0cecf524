"""Which of a model's languages a prompt's transcript is in."""

from valle.text.language import detect_language

KNOWN = ("en-us", "es", "fr-fr", "nl", "ro")


def test_a_transcript_is_read_among_the_models_languages():
    assert detect_language("a voice speaking for three seconds", KNOWN) == "en-us"
    assert detect_language("Le groupe est créé sans aucun membre.", KNOWN) == "fr-fr"
    assert detect_language("Het seconden veld bevat een fractie.", KNOWN) == "nl"
    assert detect_language("Arată versiunea, apoi iese.", KNOWN) == "ro"


def test_no_guess_when_unsure_or_nothing_to_choose_between():
    assert detect_language("ok", KNOWN) is None  # too short to tell
    assert detect_language("", KNOWN) is None
    assert detect_language("a voice speaking for three seconds", ("en-us",)) is None
    assert detect_language("a voice speaking for three seconds", ("en-us", "en-gb")) is None  # one language, two accents
    assert detect_language("a voice speaking for three seconds", ("en-gb", "en-us", "es")) == "en-gb"  # the first listed


def test_words_do_not_tell_accents_apart_so_the_preferred_variant_is_kept():
    """A model trained on "en-gb" and "en-us" (listed in that order) keeps an American text's prompt American."""
    known = ("en-gb", "en-us", "es")
    assert detect_language("a voice speaking for three seconds", known, prefer="en-us") == "en-us"
    assert detect_language("a voice speaking for three seconds", known, prefer="en-gb") == "en-gb"
    assert detect_language("Buenos días a todos, amigos míos.", known, prefer="en-us") == "es"  # another language is found
    assert detect_language("a voice speaking for three seconds", known, prefer="de") == "en-gb"  # not a candidate
