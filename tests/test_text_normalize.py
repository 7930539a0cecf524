"""Text normalisation: what a reader would say, rule by rule."""

import re
import string
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valle.text import normalize_text
from valle.text.numbers import cardinal, ordinal, year

ENGLISH = [
    # cardinals, negatives, decimals, thousands separators, leading zeros
    ("I have 42 apples.", "I have forty-two apples."),
    ("It is -5 outside.", "It is minus five outside."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("A .5 chance", "A point five chance"),
    ("The city has 1,234,567 people.", "The city has one million two hundred thirty-four thousand five hundred sixty-seven people."),
    ("Agent 007", "Agent zero zero seven"),
    ("3,4 and 5", "three, four and five"),
    ("Call 555-1234 or (555) 123-4567.", "Call five five five, one two three four or five five five, one two three, four five six seven."),
    # ordinals
    ("He came 1st, she 22nd, they 103rd.", "He came first, she twenty-second, they one hundred third."),
    ("the 1,000th visitor", "the one thousandth visitor"),
    # years and decades
    ("It happened in 1999.", "It happened in nineteen ninety-nine."),
    ("Built in 1900, rebuilt in 1905.", "Built in nineteen hundred, rebuilt in nineteen oh five."),
    ("Born in 2005, graduated in 2021.", "Born in two thousand five, graduated in twenty twenty-one."),
    ("Music of the 1990s, the '80s and the 2000s", "Music of the nineteen nineties, the eighties and the two thousands"),
    ("The war of 1990-1995", "The war of nineteen ninety to nineteen ninety-five"),
    # money in four currencies
    ("It costs $42.50.", "It costs forty-two dollars and fifty cents."),
    ("Just $1!", "Just one dollar!"),
    ("Only $0.99", "Only ninety-nine cents"),
    ("They raised $1.5 million.", "They raised one point five million dollars."),
    ("A $5m deal", "A five million dollars deal"),
    ("It was £5, or £1.01 each.", "It was five pounds, or one pound and one penny each."),
    ("€3.20 per cup", "three euros and twenty cents per cup"),
    ("¥500", "five hundred yen"),
    ("a loss of -$5", "a loss of minus five dollars"),
    # percentages, fractions
    ("Prices rose 50%.", "Prices rose fifty percent."),
    ("a 2.5 % fee", "a two point five percent fee"),
    ("Add 3/4 cup, then 1½ cups.", "Add three quarters cup, then one and a half cups."),
    ("Open 24/7", "Open twenty-four seven"),
    # times
    ("Meet at 3:30 pm.", "Meet at three thirty PM."),
    ("The train leaves at 10:05.", "The train leaves at ten oh five."),
    ("Lunch is at 12:00 sharp.", "Lunch is at twelve o'clock sharp."),
    ("Report at 15:00.", "Report at fifteen hundred."),
    ("Open until 6 p.m. Closed on Sundays.", "Open until six PM. Closed on Sundays."),
    ("Lap time 10:05:30", "Lap time ten oh five and thirty seconds"),
    # dates: written order is kept; numeric ones are month/day/year in en-us
    ("On 3 May 2021 we met.", "On the third of May twenty twenty-one we met."),
    ("By May 3, 2021 it was done.", "By May third, twenty twenty-one it was done."),
    ("Due 3/5/2021.", "Due March fifth, twenty twenty-one."),
    ("Due 13/5/2021.", "Due the thirteenth of May twenty twenty-one."),
    ("Dated 2021-05-03", "Dated May third, twenty twenty-one"),
    ("Due Mon., Jan. 5", "Due Monday, January fifth"),
    # abbreviations
    ("Dr. Smith is here.", "Doctor Smith is here."),
    ("Ask the Dr.", "Ask the Doctor."),
    ("Visit St. Paul's Cathedral.", "Visit Saint Paul's Cathedral."),
    ("He lives on Baker St. near the park.", "He lives on Baker Street near the park."),
    ("She lives on Main St. The house is red.", "She lives on Main Street. The house is red."),
    ("Mr. and Mrs. Jones met Ms. Lee.", "Mister and Missus Jones met Miz Lee."),
    ("Fruit, e.g. apples; i.e. food. E.g. pears.", "Fruit, for example apples; that is food. For example pears."),
    ("Ali vs. Frazier", "Ali versus Frazier"),
    ("Pens, paper, etc.", "Pens, paper, et cetera."),
    ("Prof. Brown and John Smith Jr. spoke.", "Professor Brown and John Smith Junior spoke."),
    ("Room No. 5, but no. Not now.", "Room Number five, but no. Not now."),  # case as written
    ("J. R. R. Tolkien lived in the U.S.A.", "J R R Tolkien lived in the U S A."),
    # symbols
    ("Tom & Jerry", "Tom and Jerry"),
    ("2 + 2 = 4", "two plus two equals four"),
    ("See you @ home", "See you at home"),
    ("We're #1!", "We're number one!"),
    ("It was 25°C, or 77°F; 1° more.", "It was twenty-five degrees Celsius, or seventy-seven degrees Fahrenheit; one degree more."),
    ("Visit www.example.com", "Visit www dot example dot com"),
    ("MP3 and H2O", "MP three and H two O"),
    ("I ❤ Paris", "I Paris"),
    # unicode quotes, dashes, ellipsis, brackets, width forms, ligatures, accents
    ("“Hello,” she said.", "Hello, she said."),
    ("«Bonjour»", "Bonjour"),
    ("It’s John’s", "It's John's"),
    ("Wait — what?", "Wait - what?"),
    ("Wait--what?", "Wait - what?"),
    ("Well… maybe", "Well... maybe"),
    ("I (really) mean it.", "I, really, mean it."),
    ("ＡＢＣ１２３", "ABC one hundred twenty-three"),
    ("ﬁne", "fine"),
    ("café naïve Zoë", "café naïve Zoë"),
    # whitespace, control characters, nothing speakable
    ("a\u200bb\x00c\t\n  d", "abc d"),
    ("Hello , world ,.", "Hello, world."),
    ("", ""),
    ("   \t\n ", ""),
    ("!!!", ""),
    ("—", ""),
    ("( ) - ...", ""),
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH)
def test_english(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("Due 3/5/2021.", "en-gb", "Due the third of May twenty twenty-one."),
    ("Due 3/5/2021.", "EN-US", "Due March fifth, twenty twenty-one."),
    ("I have 42 apples.", "en", "I have forty-two apples."),
    # other languages: only the clean-up, espeak-ng reads their numbers itself
    ("“Bonjour” — 3 chats…", "fr-fr", '"Bonjour" - 3 chats...'),
    ("Ｄｒ. Müller\u00a0hat  5\u200b€", "de", "Dr. Müller hat 5€"),
    ("!!!", "fr-fr", "!!!"),
])
def test_language_variants(text: str, language: str, expected: str) -> None:
    assert normalize_text(text, language=language) == expected


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (13, "thirteen"), (40, "forty"), (99, "ninety-nine"), (100, "one hundred"),
    (101, "one hundred one"), (1000, "one thousand"), (1_000_001, "one million one"),
    (10**12, "one trillion"), (-7, "minus seven"),
])
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"),
    (12, "twelfth"), (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth"),
])
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1066, "ten sixty-six"), (1900, "nineteen hundred"), (1905, "nineteen oh five"),
    (2000, "two thousand"), (2009, "two thousand nine"), (2010, "twenty ten"), (999, "nine hundred ninety-nine"),
])
def test_year(n: int, words: str) -> None:
    assert year(n) == words


def long_text(min_chars: int) -> str:
    """Varied sentences, each with numbers in several shapes, until `min_chars` long."""
    parts, i = [], 0
    while sum(map(len, parts)) < min_chars:
        parts.append(
            f"Item {i} cost ${i}.{i % 100:02d} (about {i * 37 % 101}% of {i * 1234:,}) on {i % 28 + 1}/{i % 12 + 1}/20{i % 100:02d} "
            f"at {i % 12 + 1}:{i % 60:02d} pm; Dr. Lee ranked it {i + 1}th in the {1900 + i % 100}s, at {i % 40 - 10}°C. "
        )
        i += 1
    return "".join(parts)


def test_ten_thousand_characters_fast_and_without_digits() -> None:
    text = long_text(10_000)
    start = time.perf_counter()
    out = normalize_text(text)
    assert time.perf_counter() - start < 2
    assert not re.search(r"\d", out)
    assert "Doctor Lee" in out and "degrees Celsius" in out


@pytest.mark.parametrize("expected", [expected for _, expected in ENGLISH])
def test_normalised_text_is_left_alone(expected: str) -> None:
    assert normalize_text(expected) == expected


def _speakable(c: str) -> bool:
    return c.isalpha() or unicodedata.category(c)[0] == "M" or c in " '-.,?!;:"


# Pieces that exercise the rules, glued together in any order with or without spaces.
_PIECES = st.sampled_from([
    "Dr.", "St.", "e.g.", "etc.", "No.", "Jan.", "U.S.", "J.", "$", "£", "%", "0", "1", "12", "1999", "3:30", "pm",
    "a.m.", "3/4", "1,234", ".5", "-", "—", "(", ")", '"', "°C", "#", "&", "Smith", "May", "3rd", "1990s", "'90s",
    ",", ".", "!", "?", ";", ":", "...", "2021-05-03", "1/2/2021", "+", "@", "a.b", "1.5", "million", "5m", "½",
])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
       | st.text(alphabet=string.printable + "$£€%°“”‘’—–…½", max_size=80)
       | st.lists(st.tuples(_PIECES, st.sampled_from(["", " "])), max_size=12).map(lambda ps: "".join(p + s for p, s in ps)))
def test_english_output_is_speakable(text: str) -> None:
    """Whatever comes in, English output holds only letters, marks and prosodic
    punctuation, with single spaces and none at the edges."""
    out = normalize_text(text)
    assert all(map(_speakable, out))
    assert out == out.strip() and "  " not in out
