"""Sentence splitting: no cut inside "Dr. Smith", "e.g.", "3.5" or "J. R. R. Tolkien"; long
sentences cut at clauses, then words, never beyond `max_chars`; nothing but punctuation is no sentence."""

import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valle.text import split_sentences


@pytest.mark.parametrize(("text", "expected"), [
    ("Dr. Smith arrived. He sat down!  Did he?  Yes.", ["Dr. Smith arrived.", "He sat down!", "Did he?", "Yes."]),
    ("Tools, e.g. hammers, i.e. heavy ones. Next.", ["Tools, e.g. hammers, i.e. heavy ones.", "Next."]),
    ("It grew 3.5 percent. Then it fell.", ["It grew 3.5 percent.", "Then it fell."]),
    ("J. R. R. Tolkien wrote it. Mr. and Mrs. Smith read it.", ["J. R. R. Tolkien wrote it.", "Mr. and Mrs. Smith read it."]),
    ("The U.S. Army came. It left.", ["The U.S. Army came.", "It left."]),
    ('"Stop!" she said. He did.', ['"Stop!" she said.', "He did."]),
    ("He left... then came back. Fine.", ["He left... then came back.", "Fine."]),
    ("No. 5 won. St. Paul is a city.", ["No. 5 won.", "St. Paul is a city."]),
    ("Line one\n\nLine two", ["Line one", "Line two"]),
    ("  spaced\n out   words. ", ["spaced out words."]),
    ("No one is fit. ... In the altogether. ! Fine.", ["No one is fit.", "In the altogether.", "Fine."]),
    ("...", ["..."]),  # nothing else to say: kept, for the tokenizer to refuse with its message
    ("", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_overlong_sentence_splits_at_clauses_first() -> None:
    clauses = [f"clause number {i} of a long sentence" for i in range(20)]
    text = ", ".join(clauses) + "."
    pieces = split_sentences(text, max_chars=80)
    assert all(len(p) <= 80 for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)  # cut after a comma, never mid-clause
    assert " ".join(pieces) == text


def test_overlong_sentence_without_commas_splits_between_words() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    pieces = split_sentences(text, max_chars=50)
    assert all(len(p) <= 50 for p in pieces) and len(pieces) > 1
    assert " ".join(pieces) == text


def test_overlong_word_is_cut() -> None:
    assert split_sentences("x" * 25, max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("Hello.", max_chars=0)


def test_split_ten_thousand_characters_fast() -> None:
    text = "Dr. Smith paid 3.5 dollars, e.g. on Monday; J. R. R. Tolkien agreed! Did he? " * 130
    start = time.perf_counter()
    pieces = split_sentences(text)
    assert time.perf_counter() - start < 1
    assert len(pieces) == 2 * 130 and all(len(p) <= 300 for p in pieces)
    assert " ".join(pieces).split() == text.split()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + " .,;!?\n'\"", max_size=400), st.integers(1, 120))
def test_split_keeps_every_character_within_the_limit(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars=max_chars)
    assert all(0 < len(p) <= max_chars for p in pieces)
    words = [c for c in text if c.isalpha()]
    assert [c for c in "".join(pieces) if c.isalpha()] == words  # only pieces of punctuation alone are left out
    assert all(any(c.isalpha() for c in p) for p in pieces) if words else "".join(pieces).replace(" ", "") == "".join(text.split())
