"""Sentence splitting for long text, so each piece can be phonemised and synthesised alone.

A period ends a sentence unless it closes an abbreviation ("Dr.", "e.g."), an initial
("J. R. R. Tolkien") or an initialism ("U.S."), and never when a lower-case word
follows. Decimals ("3.5") have no space after the period and are never split. Missing
a boundary costs little (a longer piece); a false one cuts a phrase in two, so doubtful
cases stay joined.
"""

import re

from valle.text.abbreviations import NOT_SENTENCE_FINAL

# Terminal punctuation with any closing quotes/brackets, then the space after it.
_BOUNDARY = re.compile(r"""([.!?…]+)["')\]]*(\s+)(?=\S)""")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SAYS_SOMETHING = re.compile(r"[^\W_]")  # a letter or a digit
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|(?<=\s-)\s+")


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Split `text` into sentences with whitespace collapsed, each at most `max_chars`
    long: longer sentences are cut at commas, semicolons, colons and dashes, then between
    words, and a single word longer than `max_chars` into pieces."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces = []
    for paragraph in _PARAGRAPH.split(text):
        for sentence in _sentences(paragraph):
            pieces.extend(_fit(" ".join(sentence.split()), max_chars))
    pieces = [p for p in pieces if p]
    # A stray "..." or "!" between sentences says nothing: it is left out, unless nothing else is there.
    return [p for p in pieces if _SAYS_SOMETHING.search(p)] or pieces


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if _ends_sentence(text, m):
            sentences.append(text[start: m.start(2)])
            start = m.end()
    sentences.append(text[start:])
    return sentences


def _ends_sentence(text: str, m: re.Match) -> bool:
    if text[m.end()].islower():
        return False
    if m.group(1) != ".":
        return True
    word = _WORD_BEFORE.search(text, max(0, m.start(1) - 64), m.start(1))
    if word is None:
        return True
    word = word.group(1)
    is_initial = len(word) == 1 and word.isupper()
    return not (is_initial or "." in word or word.lower() in NOT_SENTENCE_FINAL)


def _fit(sentence: str, max_chars: int) -> list[str]:
    """Pack clauses, then words, then characters greedily into pieces of at most `max_chars`."""
    if len(sentence) <= max_chars:
        return [sentence]
    for parts in (_CLAUSE_END.split(sentence), sentence.split(" ")):
        if len(parts) > 1:
            return [piece for chunk in _pack(parts, max_chars) for piece in _fit(chunk, max_chars)]
    return [sentence[i: i + max_chars] for i in range(0, len(sentence), max_chars)]


def _pack(parts: list[str], max_chars: int) -> list[str]:
    chunks: list[str] = []
    for part in parts:
        if chunks and len(chunks[-1]) + 1 + len(part) <= max_chars:
            chunks[-1] += " " + part
        else:
            chunks.append(part)
    return chunks
