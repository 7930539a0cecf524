"""English abbreviations with a period, and initials, read out as words.

Only abbreviations written with their period are expanded: espeak-ng already reads
"Mr", "Dr" or "Mrs" without one. The period of an abbreviation that may end a
sentence ("Baker St.", "etc.") is kept when the text ends there or a capitalised
word follows, so the sentence still ends in a full stop.
"""

import re

# Titles read so before a capitalised name ("Dr. Smith", "St. Paul").
_TITLES = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor",
    "St": "Saint", "Mt": "Mount", "Capt": "Captain", "Gen": "General", "Lt": "Lieutenant",
    "Col": "Colonel", "Sgt": "Sergeant", "Gov": "Governor", "Rev": "Reverend", "Hon": "Honorable",
}
# Words that follow what they qualify and so may end a sentence ("Baker St.", "etc.").
_TRAILING = {
    "St": "Street", "Dr": "Drive", "Ave": "Avenue", "Rd": "Road", "Blvd": "Boulevard",
    "Jr": "Junior", "Sr": "Senior", "etc": "et cetera",
}
# Words that precede what they qualify; matched in any case ("E.g." -> "For example").
_LEADING = {
    "vs": "versus", "e.g": "for example", "i.e": "that is", "approx": "approximately",
    "feb": "February", "apr": "April", "jun": "June", "jul": "July", "aug": "August",
    "sep": "September", "sept": "September", "oct": "October", "nov": "November", "dec": "December",
    "mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "thur": "Thursday", "thurs": "Thursday", "fri": "Friday",
}
# Also ordinary words ("no.", "sun.", "mar."): expanded only before a number ("No. 5", "Sun. 3 May").
_BEFORE_NUMBER = {"no": "number", "jan": "January", "mar": "March", "sat": "Saturday", "sun": "Sunday"}

# Abbreviations after which a period does not end a sentence, lower-cased.
NOT_SENTENCE_FINAL = frozenset({t.lower() for t in _TITLES} | set(_LEADING) | set(_BEFORE_NUMBER))

_ABBREVIATION = re.compile(r"(?<![\w.'])((?i:e\.g|i\.e)|[A-Za-z]+)\.(?!\w)")
_NAME_AHEAD = re.compile(r"\s+[A-Z][a-z]")
_NUMBER_AHEAD = re.compile(r"\s*\d")
_TEXT_END_AHEAD = re.compile(r"\s*$")
_SENTENCE_AHEAD = re.compile(r"\s+[A-Z]")
_CAPITALISED_BEHIND = re.compile(r"(?:^|\s)[A-Z][a-z]*\s+$")
# A capitalised word that is not the first of its sentence: "Baker" in "on Baker St.".
_NAME_BEHIND = re.compile(r"[^\s.!?]\s+[A-Z][a-z]*\s+$")
_INITIALISM = re.compile(r"(?<![\w.])((?:[A-Za-z]\.){2,})")
_INITIAL = re.compile(r"(?<![\w.])([A-Z])\.(?=\s+[A-Z])")


def expand_abbreviations(text: str) -> str:
    """`"Dr. Smith lives on Baker St."` -> "Doctor Smith lives on Baker Street."."""
    return _ABBREVIATION.sub(_expand_one, text)


def _expand_one(match: re.Match) -> str:
    word, text = match.group(1), match.string
    ahead, behind = text[match.end():], text[max(0, match.start() - 80): match.start()]
    key = word.lower()
    if word in _TITLES and (word not in _TRAILING or _reads_as_title(ahead, behind)):
        words = _TITLES[word]
    elif word in _TRAILING:
        words = _TRAILING[word] + ("." if _SENTENCE_AHEAD.match(ahead) else "")
    elif key in _LEADING:
        words = _same_case(_LEADING[key], word)
    elif key in _BEFORE_NUMBER and _NUMBER_AHEAD.match(ahead):
        words = _same_case(_BEFORE_NUMBER[key], word)
    else:
        return match.group()
    return words + ("." if _TEXT_END_AHEAD.match(ahead) else "")


def _reads_as_title(ahead: str, behind: str) -> bool:
    """Whether "St."/"Dr." is a title ("St. Paul", "ask the Dr.") or part of an address
    ("Baker St. The house ...", "Mulholland Dr. is long"): a name mid-sentence before it
    decides for the address, then a name after it for the title."""
    if _NAME_BEHIND.search(behind):
        return False
    return bool(_NAME_AHEAD.match(ahead)) or not _CAPITALISED_BEHIND.search(behind)


def _same_case(expansion: str, word: str) -> str:
    return expansion[0].upper() + expansion[1:] if word[0].isupper() else expansion


def expand_initials(text: str) -> str:
    """Spell initialisms and initials as letters without their periods, which would
    otherwise be read as full stops: "U.S.A." -> "U S A", "J. R. R. Tolkien" -> "J R R Tolkien"."""
    return _INITIAL.sub(r"\1", _INITIALISM.sub(_spell_initialism, text))


def _spell_initialism(match: re.Match) -> str:
    """The final period is kept only where the text ends: "the U.S. Army" is one phrase."""
    letters = " ".join(match.group(1).rstrip(".").split("."))
    return letters + ("." if not match.string[match.end():].strip() else "")
