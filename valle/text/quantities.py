"""English numbers in context: times, dates, phone numbers, money, temperatures,
ordinals, decades, fractions and plain numbers, each rewritten as the words a reader
would say.

The rules run in the order of `expand_quantities`: the more specific shapes first
("$1.5 million", "3:30 pm", "3 May"), plain numbers last.
"""

import re

from valle.text.numbers import cardinal, digits, ordinal, plural, year

_MONTHS = "January February March April May June July August September October November December".split()
_MONTH = "|".join(_MONTHS)
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"  # "1,234,567" or "1234567"

_CURRENCIES = {  # symbol: (unit, units, subunit, subunits); yen has no subunit in use
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
}
_SCALES = {
    "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
    "k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion", "B": "billion",
}
_FRACTION_NAMES = {2: ("half", "halves"), 4: ("quarter", "quarters")}

_AM_PM = r"(?:\s*([AaPp])\.?[Mm]\b(\.?))"  # "pm", "PM", "p.m."; group 2 is a closing period
_TIME = re.compile(rf"(?<![\d:.])(\d{{1,2}}):(\d{{2}})(?::(\d{{2}}))?(?![\d:]){_AM_PM}?")
_HOUR_AM_PM = re.compile(rf"(?<![\d:.,])(\d{{1,2}}){_AM_PM}")
_NUMERIC_DATE = re.compile(r"(?<![\d/.])(\d{1,2})([/.])(\d{1,2})\2(\d{4}|\d{2})(?![\d/]|\.\d)")
_PHONE_NUMBER = re.compile(r"(?<![\d-])(?:\((\d{3})\)\s?|(\d{3})[-.\s])?(\d{3})-(\d{4})(?![\d-])")  # (555) 123-4567
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")
_DAY_MONTH = re.compile(rf"(?<![\d.,])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?![.,:]?\d)")
_MONEY = re.compile(rf"([$£€¥])\s?({_NUMBER})(?:\.(\d+))?(?:\s?({'|'.join(_SCALES)})\b)?")
_DEGREES = re.compile(rf"(?<![\d.])({_NUMBER})(?:\.(\d+))?\s?°(?:\s?([CF])(?![a-zA-Z]))?")
_NUMBER_SIGN = re.compile(r"#\s?(?=\d)")
_ORDINAL = re.compile(rf"(?<![\d.,])({_NUMBER})(?:st|nd|rd|th)\b")
_DECADE = re.compile(r"(?<![\d.,])'?(\d{3}0|\d0)s\b")
_YEAR_RANGE = re.compile(r"(?<![\d.,-])(1[1-9]\d\d|20\d\d)-(1[1-9]\d\d|20\d\d)(?![\d-])")
_FRACTION = re.compile(r"(?<![\d/.,])(?:(\d+)\s+)?(\d+)[/⁄](\d+)(?![\d/])")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_MINUS = re.compile(r"(?<![\w.])-(?=[$£€¥]?\.?\d)")
_PLAIN_NUMBER = re.compile(rf"(?<!\d)(?:({_NUMBER})(?:\.(\d+))?|\.(\d+))")


def expand_quantities(text: str, language: str) -> str:
    """Rewrite every number in `text` as words; `language` ("en-us", "en-gb", ...) only
    decides whether "3/5/2021" is month/day/year (en-us) or day/month/year."""
    month_first = language == "en-us"
    text = _TIME.sub(_say_time, text)
    text = _HOUR_AM_PM.sub(lambda m: cardinal(int(m.group(1))) + _say_am_pm(m, 2), text)
    text = _NUMERIC_DATE.sub(lambda m: _say_numeric_date(m, month_first), text)
    text = _ISO_DATE.sub(_say_iso_date, text)
    text = _DAY_MONTH.sub(_say_day_month, text)
    text = _MONTH_DAY.sub(_say_month_day, text)
    text = _PHONE_NUMBER.sub(lambda m: ", ".join(digits(g) for g in m.groups() if g), text)
    text = _MINUS.sub("minus ", text)
    text = _MONEY.sub(_say_money, text)
    text = _DEGREES.sub(_say_degrees, text)
    text = _NUMBER_SIGN.sub("number ", text)
    text = _ORDINAL.sub(lambda m: ordinal(_int(m.group(1))), text)
    text = _DECADE.sub(lambda m: plural(year(int(m.group(1)))), text)
    text = _YEAR_RANGE.sub(lambda m: f"{m.group(1)} to {m.group(2)}" if m.group(1) < m.group(2) else m.group(), text)
    text = _FRACTION.sub(_say_fraction, text)
    text = _LETTER_DIGIT.sub(" ", text)
    return _PLAIN_NUMBER.sub(_say_number, text)


def _int(number: str) -> int:
    return int(number.replace(",", ""))


def _say_am_pm(m: re.Match, group: int) -> str:
    """" AM"/" PM" for the match's am/pm groups; the period of "p.m." stays where it also
    ends a sentence (end of text or a capital follows)."""
    if not m.group(group):
        return ""
    ahead = m.string[m.end():]
    ends_sentence = m.group(group + 1) and (not ahead.strip() or re.match(r"\s+[A-Z]", ahead))
    return f" {m.group(group).upper()}M" + ("." if ends_sentence else "")


def _say_time(m: re.Match) -> str:
    """"3:30 pm" -> "three thirty PM", "10:05" -> "ten oh five", "12:00" -> "twelve o'clock",
    "15:00" -> "fifteen hundred", "10:05:30" -> "ten oh five and thirty seconds"."""
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24 or minute > 59:
        return m.group()
    am_pm = _say_am_pm(m, 4)
    if minute == 0:
        words = cardinal(hour) + ("" if am_pm else " o'clock" if 1 <= hour <= 12 else " hundred")
    else:
        words = f"{cardinal(hour)} {'oh ' if minute < 10 else ''}{cardinal(minute)}"
    if m.group(3):
        words += f" and {cardinal(int(m.group(3)))} seconds"
    return words + am_pm


def _say_date(day: int, month: int, year_words: str, month_first: bool) -> str | None:
    """"May third, twenty twenty-one" or "the third of May twenty twenty-one"; None if no such date."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    name = _MONTHS[month - 1]
    if month_first:
        return f"{name} {ordinal(day)}, {year_words}"
    return f"the {ordinal(day)} of {name} {year_words}"


def _say_numeric_date(m: re.Match, month_first: bool) -> str:
    """"3/5/2021" is March 5 in en-us and 3 May in other English; a first number above 12
    can only be a day. "3.5.2021" reads the same; a two-digit year as written ("oh five")."""
    first, separator, second, year_ = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
    if separator == "." and len(year_) == 2:
        return m.group()  # a version number such as "1.2.10"
    month_first = month_first and first <= 12
    day, month = (second, first) if month_first else (first, second)
    year_words = year(int(year_)) if len(year_) == 4 else ("oh " if year_[0] == "0" else "") + cardinal(int(year_))
    return _say_date(day, month, year_words, month_first) or m.group()


def _say_iso_date(m: re.Match) -> str:
    """"2021-05-03" -> "May third, twenty twenty-one"."""
    return _say_date(int(m.group(3)), int(m.group(2)), year(int(m.group(1))), month_first=True) or m.group()


def _say_month_day(m: re.Match) -> str:
    """"May 3" and "May 3rd" -> "May third"; a following year is read on its own."""
    day = int(m.group(2))
    return f"{m.group(1)} {ordinal(day)}" if 1 <= day <= 31 else m.group()


def _say_day_month(m: re.Match) -> str:
    """"3 May" and "3rd of May" -> "the third of May" (no second "the" after "the")."""
    day = int(m.group(1))
    if not 1 <= day <= 31:
        return m.group()
    words = f"{ordinal(day)} of {m.group(2)}"
    return words if m.string[: m.start()].lower().endswith("the ") else "the " + words


def _say_money(m: re.Match) -> str:
    """"$42.50" -> "forty-two dollars and fifty cents", "$1.5 million" -> "one point five
    million dollars", "£1" -> "one pound", "$0.99" -> "ninety-nine cents"."""
    unit, units, subunit, subunits = _CURRENCIES[m.group(1)]
    whole, fraction, scale = _int(m.group(2)), m.group(3), m.group(4)
    if scale:
        return f"{_say_decimal(whole, fraction)} {_SCALES[scale]} {units}"
    if fraction and (len(fraction) > 2 or subunit is None):
        return f"{_say_decimal(whole, fraction)} {units}"
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = [f"{cardinal(whole)} {unit if whole == 1 else units}"] if whole or not cents else []
    if cents:
        parts.append(f"{cardinal(cents)} {subunit if cents == 1 else subunits}")
    return " and ".join(parts)


def _say_degrees(m: re.Match) -> str:
    """"25°C" -> "twenty-five degrees Celsius", "1°" -> "one degree"."""
    whole, fraction = _int(m.group(1)), m.group(2)
    scale = {"C": " Celsius", "F": " Fahrenheit", None: ""}[m.group(3)]
    return f"{_say_decimal(whole, fraction)} {'degree' if whole == 1 and not fraction else 'degrees'}{scale}"


def _say_fraction(m: re.Match) -> str:
    """"3/4" -> "three quarters", "1 1/2" -> "one and a half". Only proper fractions with
    a denominator up to 100 are read so; in "24/7" the slash later becomes a space."""
    whole, numerator, denominator = m.group(1), int(m.group(2)), int(m.group(3))
    if not 0 < numerator < denominator <= 100:
        return m.group()
    one, many = _FRACTION_NAMES.get(denominator, (ordinal(denominator), ordinal(denominator) + "s"))
    name = one if numerator == 1 else many
    if whole is None:
        return f"{cardinal(numerator)} {name}"
    return f"{cardinal(int(whole))} and {'a' if numerator == 1 else cardinal(numerator)} {name}"


def _say_number(m: re.Match) -> str:
    """A plain number: "1,234" a cardinal, "3.14" and ".5" with "point", "007" digit by
    digit, and a bare four-digit 1100..2099 a year, as English readers say "in 1999"."""
    whole, fraction = m.group(1), m.group(2) or m.group(3)
    if whole is None:
        return "point " + digits(fraction)
    if fraction:
        return _say_decimal(_int(whole), fraction)
    if "," in whole:
        return cardinal(_int(whole))
    if len(whole) > 1 and whole[0] == "0":
        return digits(whole)
    return year(int(whole)) if 1100 <= int(whole) <= 2099 else cardinal(int(whole))


def _say_decimal(whole: int, fraction: str | None) -> str:
    return cardinal(whole) + (f" point {digits(fraction)}" if fraction else "")
