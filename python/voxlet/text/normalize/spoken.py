"""Pieces of spoken English the rules share: numbers, digits, letters, money, dates. Pure."""

from __future__ import annotations

from voxlet.text.normalize.lexicon_en import MONTHS
from voxlet.text.numbers import MAX_CARDINAL, cardinal, ordinal, year

_DIGITS = "zero one two three four five six seven eight nine".split()
_VOWELS = set("aeiouyAEIOUY")
# An integer with more digits than this and no thousands separators is an identifier (an
# account, a serial): read digit by digit.
MAX_PLAIN_DIGITS = 9


def digits(s: str) -> str:
    """Each digit as a word: "0199" -> "zero one nine nine"."""
    return " ".join(_DIGITS[int(c)] for c in s if c.isdigit())


def integer(s: str) -> str:
    """An integer as written ("1,234", "007", "42"): a cardinal, or digit by digit for leading
    zeros and long identifiers."""
    plain = s.replace(",", "")
    if len(plain) > 1 and plain.startswith("0"):
        return digits(plain)
    if "," not in s and len(plain) > MAX_PLAIN_DIGITS:
        return digits(plain)
    value = int(plain)
    if value > MAX_CARDINAL:
        return digits(plain)
    return cardinal(value)


def number(s: str) -> str:
    """A written number: "12", "1,234.5", ".5", "-3", "−0.25"."""
    s = s.replace("−", "-")
    if s.startswith("-"):
        return "minus " + number(s[1:])
    if s.startswith("+"):
        return "plus " + number(s[1:])
    whole, dot, frac = s.partition(".")
    words = integer(whole) if whole else ""
    if dot:
        words = (words + " point " if words else "point ") + digits(frac)
    return words


def is_one(s: str) -> bool:
    """True when a written amount takes the singular ("1", "-1"; not "1.0")."""
    return s.lstrip("-−+") == "1"


def ordinal_of(s: str) -> str:
    return ordinal(int(s.replace(",", "")))


def year_words(n: int) -> str:
    return year(n)


def two_digit_year(s: str) -> str:
    """'99 -> "ninety-nine", '05 -> "oh five", '00 -> "hundred"."""
    n = int(s)
    if n == 0:
        return "hundred"
    return cardinal(n) if n >= 10 else f"oh {cardinal(n)}"


def month_name(month: int) -> str:
    return MONTHS[month - 1]


def date_words(month: int, day: int, year_text: str | None, day_first: bool = False) -> str:
    """ "March fourteenth, nineteen ninety-nine"; day first: "the fourteenth of March, ..."."""
    head = (
        f"the {ordinal(day)} of {month_name(month)}"
        if day_first
        else f"{month_name(month)} {ordinal(day)}"
    )
    if year_text is None:
        return head
    spoken = year(int(year_text)) if len(year_text) == 4 else two_digit_year(year_text)
    return f"{head}, {spoken}"


def letters(s: str) -> str:
    """Spelled out: "FBI" -> "F B I"."""
    return " ".join(c.upper() for c in s if c.isalnum())


def has_vowel(s: str) -> bool:
    return any(c in _VOWELS for c in s)


def plural_of_number_word(words: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties", "fifteen hundred" -> "fifteen hundreds"."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}" if head else last


def money(amount: str, names: tuple[str, str, str, str], scale: str | None = None) -> str:
    """ "4.50" with dollar names -> "four dollars and fifty cents"; "0.99" -> "ninety-nine
    cents"; "2.5" + "million" -> "two point five million dollars"."""
    major_one, major_many, minor_one, minor_many = names
    amount = amount.replace(",", "")
    if scale is not None:
        return f"{number(amount)} {scale} {major_many}"
    whole, _, frac = amount.partition(".")
    if len(frac) > 2:  # $4.567: not cents
        return f"{number(amount)} {major_many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    major = int(whole) if whole else 0
    parts = []
    if major or not cents:
        parts.append(f"{integer(whole or '0')} {major_one if major == 1 else major_many}")
    if cents:
        parts.append(f"{cardinal(cents)} {minor_one if cents == 1 else minor_many}")
    return " and ".join(parts)
