"""English number words: cardinals, ordinals, years, digit strings and plurals.

Written out here rather than taken from a package so that every reading the
normaliser produces is visible and testable in one place. American style: no
"and" inside numbers ("one hundred five"), hyphenated tens ("forty-two").
"""

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_IRREGULAR_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}

# Above this, numbers are read digit by digit: nobody says "four quintillion ...".
MAX_CARDINAL = 10**18 - 1


def cardinal(n: int) -> str:
    """`42` -> "forty-two"; negative numbers get "minus"; huge ones are read digit by digit."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > MAX_CARDINAL:
        return digits(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable: every n >= 1000 has a scale")


def ordinal(n: int) -> str:
    """`22` -> "twenty-second": the last word of the cardinal becomes an ordinal."""
    words = cardinal(n)
    last = re.search(r"[a-z]+$", words).group()
    if last in _IRREGULAR_ORDINALS:
        th = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        th = last[:-1] + "ieth"
    else:
        th = last + "th"
    return words[: -len(last)] + th


def year(n: int) -> str:
    """Read a year the way English speakers do: 1999 "nineteen ninety-nine", 1905
    "nineteen oh five", 1900 "nineteen hundred", 2005 "two thousand five", 2021
    "twenty twenty-one", 1066 "ten sixty-six". Other numbers are plain cardinals."""
    if not 1000 <= n <= 9999 or n % 1000 < 10:
        return cardinal(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{cardinal(century)} hundred"
    return f"{cardinal(century)} {'oh ' if rest < 10 else ''}{cardinal(rest)}"


def digits(text: str) -> str:
    """`"0419"` -> "zero four one nine": for decimals, leading zeros and long codes."""
    return " ".join(_ONES[int(d)] for d in text)


def plural(words: str) -> str:
    """Plural of a number reading, for decades: "nineteen ninety" -> "nineteen nineties"."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith("x"):
        return words + "es"
    return words + "s"
