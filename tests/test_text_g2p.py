"""G2P with espeak-ng (shipped by espeakng-loader): tokens, errors, long text."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from valle.errors import TextError
from valle.text import MAX_CHARS, PhonemeTokenizer, supported_languages
from valle.text.vocab import PUNCTUATION, WORD_SEPARATOR


@pytest.fixture(scope="module")
def tokenizer() -> PhonemeTokenizer:
    return PhonemeTokenizer()


@pytest.mark.parametrize(("text", "language", "phonemes"), [
    ("cat", "en-us", "k ˈ æ t"),
    ("thing", "en-us", "θ ˈ ɪ ŋ"),
    ("judge", "en-us", "dʒ ˈ ʌ dʒ"),  # an affricate is one phone
    ("car", "en-us", "k ˈ ɑːɹ"),  # rhotic: r-coloured vowel
    ("car", "en-gb", "k ˈ ɑː"),  # non-rhotic, length mark on its vowel
    ("hello world", "en-us", "h ə l ˈ oʊ _ w ˈ ɜː l d"),
    ("hello", "en-gb", "h ə l ˈ əʊ"),
    ("Hello, world!", "en-us", "h ə l ˈ oʊ , _ w ˈ ɜː l d !"),
    ("Yes? No!", "en-us", "j ˈ ɛ s ? _ n ˈ oʊ !"),
    ("Stop - now", "en-us", "s t ˈ ɑː p — _ n ˈ aʊ"),  # a dash standing alone is a pause
    ("Dr. Smith", "en-us", "d ˈ ɑː k t ɚ _ s m ˈ ɪ θ"),  # normalised first
])
def test_phonemes(tokenizer: PhonemeTokenizer, text: str, language: str, phonemes: str) -> None:
    assert tokenizer.phonemize(text, language=language) == phonemes.split()


def test_word_separators_and_punctuation_are_tokens(tokenizer: PhonemeTokenizer) -> None:
    tokens = tokenizer.phonemize("One, two; three: four. Five? Six!")
    assert tokens.count(WORD_SEPARATOR) == 5
    assert [t for t in tokens if t in PUNCTUATION] == [",", ";", ":", ".", "?", "!"]
    # punctuation follows its word; a separator never precedes punctuation
    assert all(not (a == WORD_SEPARATOR and b in PUNCTUATION) for a, b in zip(tokens, tokens[1:]))


def test_ellipsis_is_three_stops(tokenizer: PhonemeTokenizer) -> None:
    tokens = tokenizer.phonemize("Wait… what")
    i = tokens.index(".")
    assert tokens[i: i + 4] == [".", ".", ".", WORD_SEPARATOR]


def test_stress_marks_stand_alone(tokenizer: PhonemeTokenizer) -> None:
    tokens = tokenizer.phonemize("photography understanding")
    assert "ˈ" in tokens and "ˌ" in tokens
    assert not any(len(t) > 1 and ("ˈ" in t or "ˌ" in t) for t in tokens)


def test_glued_repeated_letters_become_known_phones(tokenizer: PhonemeTokenizer) -> None:
    tokens = tokenizer.phonemize("AAAARGH")  # espeak-ng writes "ææ|ææ"
    assert tokens[:5] == ["ˈ", "æ", "æ", "æ", "æ"]
    assert tokenizer.vocab.unk_id not in tokenizer.vocab.encode(tokens)


def test_deterministic(tokenizer: PhonemeTokenizer) -> None:
    text = "The quick brown fox jumps over the lazy dog at 3:30 pm on 3 May 2021."
    first = tokenizer(text)
    assert tokenizer(text) == first
    assert PhonemeTokenizer()(text) == first


def test_threads_share_the_backends_safely() -> None:
    texts = [f"Thread {i} reads sentence number {i}, then stops." for i in range(16)]
    expected = [PhonemeTokenizer().phonemize(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(PhonemeTokenizer().phonemize, texts * 4)) == expected * 4


def test_language_switch_markers_are_removed(tokenizer: PhonemeTokenizer) -> None:
    """espeak-ng reads "football" in French text as English and marks it "(en)...(fr)"."""
    tokens = tokenizer.phonemize("J'adore le football et le weekend.", language="fr-fr")
    assert not any(c in t for t in tokens for c in "()")
    assert not any(c.isdigit() or c.isupper() for t in tokens for c in t)
    assert "-" not in tokens  # espeak-ng's French liaison hyphen is no sound


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("   \n\t", "empty"),
    ("!!!", "nothing to speak in '!!!'"),
    ("—", "nothing to speak in '—'"),
    ("( ) ...", "nothing to speak"),
])
def test_nothing_to_speak(tokenizer: PhonemeTokenizer, text: str, message: str) -> None:
    with pytest.raises(TextError, match=message):
        tokenizer(text)


def test_nothing_to_speak_in_another_language(tokenizer: PhonemeTokenizer) -> None:
    with pytest.raises(TextError, match="nothing to speak in '!!!'"):
        tokenizer("!!!", language="fr-fr")


@pytest.mark.parametrize(("language", "hint"), [
    ("xx-yy", "supported_languages"),
    ("en", "did you mean en-gb, en-us"),
    ("klingon", "supported_languages"),
])
def test_unknown_language(tokenizer: PhonemeTokenizer, language: str, hint: str) -> None:
    with pytest.raises(TextError, match=f"unknown language '{language}'") as error:
        tokenizer("hello", language=language)
    assert hint in str(error.value)


def test_language_codes() -> None:
    languages = supported_languages()
    assert {"en-us", "en-gb", "fr-fr", "de"} <= set(languages)
    assert PhonemeTokenizer().phonemize("hello", language="EN-GB") == "h ə l ˈ əʊ".split()


def test_ten_thousand_characters(tokenizer: PhonemeTokenizer) -> None:
    paragraph = ("On 3 May 2021, Dr. Smith paid $42.50 for 1,234 books; e.g. novels, poems and plays. "
                 "Was it worth it? J. R. R. Tolkien would have said yes - at 3:30 pm, in the 1990s! ")
    text = paragraph * (10_000 // len(paragraph) + 1)
    start = time.perf_counter()
    tokens = tokenizer.phonemize(text)
    assert time.perf_counter() - start < 10
    assert tokens.count("?") == tokens.count("!") == text.count("?")
    assert tokenizer.phonemize(paragraph) == tokens[: len(tokenizer.phonemize(paragraph))]


def test_text_over_the_cap(tokenizer: PhonemeTokenizer) -> None:
    with pytest.raises(TextError, match="split_sentences"):
        tokenizer("a" * (MAX_CHARS + 1))
