"""English rules: written forms (numbers, money, dates, units, abbreviations, ...) -> words.

One left-to-right scan of one combined regular expression; each rule is a pattern and a
handler that says the match aloud (or declines, and the next rule that matches at the same
place is tried). Rules see the original text around their match (the word before, what
follows), never another rule's output, so no rule rewrites what one before it said.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from voxlet.text.normalize import lexicon_en as lex
from voxlet.text.normalize import spoken
from voxlet.text.numbers import cardinal, ordinal

NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_MONTH_FULL = "|".join(lex.MONTHS)
_MONTH_ABBR = "|".join(sorted(lex.MONTH_ABBREVIATIONS, key=len, reverse=True))
MONTH = rf"(?:{_MONTH_FULL}|(?:{_MONTH_ABBR})\.?)"
_UNIT = "|".join(re.escape(u) for u in sorted(lex.UNITS, key=len, reverse=True))
_SCALE = r"(?:thousand|million|billion|trillion|mn|bn|tn|[kKmMbBT])"
_CODES = "|".join(lex.CURRENCY_CODES)
_SYMS = "|".join(re.escape(s) for s in sorted(lex.CURRENCY_SYMBOLS, key=len, reverse=True))
_TLD = "com|org|net|edu|gov|io|co|uk|de|fr|ai|dev|app|info|biz|us|ca|eu|me|tv|ly|nl|au|jp"
_TITLES = "|".join(sorted(lex.TITLES, key=len, reverse=True))
_ABBR = "|".join(re.escape(a) for a in sorted(lex.ABBREVIATIONS, key=len, reverse=True))
_BEFORE_NUM = "|".join(re.escape(a) for a in sorted(lex.BEFORE_NUMBER, key=len, reverse=True))
_ROMAN_KEYS = "|".join(re.escape(k) for k in sorted(lex.ROMAN_KEYWORDS, key=len, reverse=True))
_VULGAR = "".join(lex.VULGAR_FRACTIONS)
_ROMAN_VALID = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_AMPM = r"(?:[AaPp]\.[Mm]\.|[AaPp][Mm](?![\w]))"


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may look at besides its match."""

    text: str
    shouting: bool  # most letters are capitals: all-caps words are words, not initialisms

    def word_before(self, pos: int) -> str:
        head = self.text[:pos].rstrip()
        cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        return head[cut + 1 :].strip("\"'“”‘’([{")

    def rest(self, pos: int) -> str:
        return self.text[pos:]

    def sentence_ends_at(self, pos: int) -> bool:
        """True when the text ends at `pos` or a new sentence starts after it."""
        rest = self.text[pos:]
        stripped = rest.lstrip()
        if not stripped:
            return True
        return len(stripped) < len(rest) and stripped[0].isupper()


Handler = Callable[[re.Match[str], Context], str | None]
_RULES: list[tuple[str, str, Handler]] = []


def rule(name: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _RULES.append((name, pattern, handler))
        return handler

    return register


def _g(m: re.Match[str], name: str) -> str | None:
    return m.group(name)


def _stop(m: re.Match[str], ctx: Context) -> str:
    """A full stop for a match ending in '.' that also ends its sentence ("in the U.S.")."""
    return "." if m.group().endswith(".") and ctx.sentence_ends_at(m.end()) else ""


# --- web -------------------------------------------------------------------------------------

_URL_SEPARATORS = {
    ".": "dot", "/": "slash", "-": "dash", "_": "underscore", ":": "colon", "?": "question mark",
    "=": "equals", "&": "and", "#": "hash", "~": "tilde", "@": "at", "+": "plus", "%": "percent",
}  # fmt: skip


_TWO_LETTER_WORDS = frozenset("co go to my me we do no so on in at be it up".split())


def _say_address(s: str, spell_pairs: bool = True) -> str:
    words = []
    for part in re.findall(r"[A-Za-z]+|\d+|[^A-Za-z\d]", s):
        if part.isdigit():
            words.append(spoken.integer(part) if len(part) <= 4 else spoken.digits(part))
        elif part.isalpha():
            lower = part.lower()
            if (
                lower == "www"
                or (len(part) <= 4 and not spoken.has_vowel(part))
                or len(part) == 1
                or (spell_pairs and len(part) == 2 and lower not in _TWO_LETTER_WORDS)
            ):
                words.append(spoken.letters(part))
            else:
                words.append(part)
        elif part in _URL_SEPARATORS:
            words.append(_URL_SEPARATORS[part])
    return " ".join(words)


@rule(
    "url",
    r"(?<![\w@.])(?:(?:https?|ftp)://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"
    rf"|(?<![\w@.\-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{_TLD})"
    r"(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)\]])?(?![\w@])",
)
def _url(m: re.Match[str], ctx: Context) -> str:
    address = re.sub(r"^(?:https?|ftp)://", "", m.group())
    return _say_address(address.rstrip("/"))


@rule("email", r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
def _email(m: re.Match[str], ctx: Context) -> str:
    local, _, domain = m.group().partition("@")
    return f"{_say_address(local, spell_pairs=False)} at {_say_address(domain)}"


# --- phone numbers, dates, times ---------------------------------------------------------------


@rule(
    "phone",
    r"(?<![\w+.,/-])(?:(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r"|\+\d{1,3}(?:[ .-]\(?\d{1,4}\)?){2,5}|\d{3}-\d{4})(?![\w-]|[.,]\d)",
)
def _phone(m: re.Match[str], ctx: Context) -> str:
    text = m.group()
    groups = re.findall(r"\d+", text)
    said = ", ".join(spoken.digits(g) for g in groups)
    return ("plus " + said) if text.startswith("+") else said


@rule(
    "iso_date",
    r"(?<![\w.-])(?P<iso_y>\d{4})-(?P<iso_m>0[1-9]|1[0-2])-(?P<iso_d>0[1-9]|[12]\d|3[01])(?![\w-])",
)
def _iso_date(m: re.Match[str], ctx: Context) -> str:
    return spoken.date_words(int(m["iso_m"]), int(m["iso_d"]), m["iso_y"])


@rule(
    "numeric_date",
    r"(?<![\w/.])(?P<nd_a>\d{1,2})(?P<nd_sep>[/.])(?P<nd_b>\d{1,2})(?P=nd_sep)"
    r"(?P<nd_y>\d{4}|\d{2})(?![\w/]|\.\d)",
)
def _numeric_date(m: re.Match[str], ctx: Context) -> str | None:
    a, b = int(m["nd_a"]), int(m["nd_b"])
    # slashes: US month/day unless the first cannot be a month; dots: European day.month
    day_first = m["nd_sep"] == "." or a > 12
    month, day = (b, a) if day_first else (a, b)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return spoken.date_words(month, day, m["nd_y"])


def _month_number(name: str) -> int:
    name = name.rstrip(".")
    if name in lex.MONTHS:
        return lex.MONTHS.index(name) + 1
    return lex.MONTH_ABBREVIATIONS[name]


@rule(
    "month_date",
    rf"(?<![\w.])(?P<md_m>{MONTH})\s(?P<md_d>[0-3]?\d)(?:st|nd|rd|th)?(?![\d:])"
    r"(?:,?\s(?P<md_y>\d{4})(?![\d]))?(?!\w)",
)
def _month_date(m: re.Match[str], ctx: Context) -> str | None:
    day = int(m["md_d"])
    if not 1 <= day <= 31:
        return None
    return spoken.date_words(_month_number(m["md_m"]), day, m["md_y"])


@rule(
    "day_month",
    rf"(?<![\w.])(?P<dm_d>[0-3]?\d)(?:st|nd|rd|th)?\s(?:of\s)?(?P<dm_m>{MONTH})(?!\w)"
    r"(?:,?\s(?P<dm_y>\d{4})(?!\d))?",
)
def _day_month(m: re.Match[str], ctx: Context) -> str | None:
    day = int(m["dm_d"])
    if not 1 <= day <= 31:
        return None
    return spoken.date_words(_month_number(m["dm_m"]), day, m["dm_y"], day_first=True)


def _ampm(s: str | None) -> str:
    if not s:
        return ""
    return " " + ("A M" if s[0] in "Aa" else "P M")


@rule(
    "clock",
    r"(?<![\w:.,])(?P<t_h>[01]?\d|2[0-3]):(?P<t_m>[0-5]\d)(?::(?P<t_s>[0-5]\d))?"
    rf"(?:\s?(?P<t_ap>{_AMPM}))?(?![\w:]|\.\d)",
)
def _clock(m: re.Match[str], ctx: Context) -> str:
    hour, minute = int(m["t_h"]), int(m["t_m"])
    ap = m["t_ap"]
    if minute == 0:
        words = cardinal(hour) + ("" if ap else (" o'clock" if hour <= 12 else " hundred"))
    elif minute < 10:
        words = f"{cardinal(hour)} oh {cardinal(minute)}"
    else:
        words = f"{cardinal(hour)} {cardinal(minute)}"
    if m["t_s"] is not None:
        sec = int(m["t_s"])
        words += f" and {cardinal(sec)} second{'s' if sec != 1 else ''}"
    return words + _ampm(ap) + (_stop(m, ctx) if ap else "")


@rule("hour_ampm", rf"(?<![\w:.,])(?P<ta_h>1[0-2]|0?[1-9])\s?(?P<ta_ap>{_AMPM})")
def _hour_ampm(m: re.Match[str], ctx: Context) -> str:
    return cardinal(int(m["ta_h"])) + _ampm(m["ta_ap"]) + _stop(m, ctx)


# --- money, percentages, fractions, ranges, units ---------------------------------------------


def _scale(s: str | None) -> str | None:
    return None if s is None else lex.SCALES[s]


@rule(
    "money_symbol",
    rf"(?<![\w$€£¥₹₩₽₿])(?P<c_neg>[-−])?(?P<c_sym>{_SYMS})\s?(?P<c_num>{NUM})"
    rf"(?:\s?[-–]\s?(?:{_SYMS})?(?P<c_num2>{NUM}))?"
    rf"(?:\s?(?P<c_scale>{_SCALE})(?![\w]))?(?:/(?P<c_per>[a-z]+))?(?![\w])",
)
def _money_symbol(m: re.Match[str], ctx: Context) -> str:
    names = lex.CURRENCY_SYMBOLS[m["c_sym"]]
    scale = _scale(m["c_scale"])
    if m["c_num2"] is not None:
        amount = f"{spoken.number(m['c_num'])} to {spoken.number(m['c_num2'])}"
        words = f"{amount} {scale + ' ' if scale else ''}{names[1]}"
    else:
        words = spoken.money(m["c_num"], names, scale)
    if m["c_per"]:
        words += f" per {_per(m['c_per'])}"
    return ("minus " if m["c_neg"] else "") + words


_PER = {"hr": "hour", "h": "hour", "mo": "month", "yr": "year", "wk": "week", "ea": "each"}


def _per(s: str) -> str:
    if s in _PER:
        return _PER[s]
    unit = lex.UNITS.get(s)
    return unit[0] if unit else s


@rule(
    "money_code",
    rf"(?<![\w])(?P<cc_code>{_CODES})\s?(?P<cc_num>{NUM})(?:\s?(?P<cc_scale>{_SCALE})(?!\w))?(?!\w)"
    rf"|(?<![\w.,])(?P<cn_num>{NUM})\s?(?:(?P<cn_scale>{_SCALE})\s?)?(?P<cn_code>{_CODES})(?!\w)",
)
def _money_code(m: re.Match[str], ctx: Context) -> str:
    if m["cc_code"] is not None:
        names, amount, scale = lex.CURRENCY_CODES[m["cc_code"]], m["cc_num"], m["cc_scale"]
    else:
        names, amount, scale = lex.CURRENCY_CODES[m["cn_code"]], m["cn_num"], m["cn_scale"]
    return spoken.money(amount, names, _scale(scale))


@rule("cents", r"(?<![\w.,])(?P<ct>\d+)\s?¢")
def _cents(m: re.Match[str], ctx: Context) -> str:
    n = int(m["ct"])
    return f"{cardinal(n)} cent{'s' if n != 1 else ''}"


@rule(
    "percent",
    rf"(?<![\w.,])(?P<p_a>[-−]?{NUM})(?:\s?[-–]\s?(?P<p_b>{NUM}))?\s?(?:%|\s(?:per\s?cent)(?!\w))",
)
def _percent(m: re.Match[str], ctx: Context) -> str:
    if m["p_b"] is not None:
        return f"{spoken.number(m['p_a'])} to {spoken.number(m['p_b'])} percent"
    return f"{spoken.number(m['p_a'])} percent"


def _fraction(n: int, d: int) -> str:
    if d == 0:
        return f"{cardinal(n)} over zero"
    if d == 1:
        return f"{cardinal(n)} over one"
    if d == 2:
        return f"{cardinal(n)} half" if n == 1 else f"{cardinal(n)} halves"
    if d == 4:
        return f"{cardinal(n)} quarter" + ("s" if n != 1 else "")
    if d <= 20 or d in (32, 64, 100, 1000):
        word = ordinal(d)
        if d in (100, 1000):
            word = word.removeprefix("one ")
        return f"{cardinal(n)} {word}{'s' if n != 1 else ''}"
    return f"{cardinal(n)} over {cardinal(d)}"


def _mixed(whole: int, n: int, d: int) -> str:
    part = _fraction(n, d)
    if n == 1 and d == 2:
        part = "a half"
    elif n == 1 and d == 4:
        part = "a quarter"
    return f"{cardinal(whole)} and {part}"


@rule(
    "fraction",
    r"(?<![\w/.,])(?:(?P<f_w>\d+)\s)?(?P<f_n>\d+)/(?P<f_d>\d+)(?![\w/]|[.,]\d)"
    rf"|(?<![\w.,])(?P<vf_w>\d+)?\s?(?P<vf>[{_VULGAR}])",
)
def _fraction_rule(m: re.Match[str], ctx: Context) -> str:
    if m["vf"] is not None:
        n, d = lex.VULGAR_FRACTIONS[m["vf"]]
        return _mixed(int(m["vf_w"]), n, d) if m["vf_w"] else _fraction(n, d)
    n, d = int(m["f_n"]), int(m["f_d"])
    if m["f_w"] is None and (n, d) == (24, 7):
        return "twenty-four seven"
    if m["f_w"] is not None and 0 < n < d:
        return _mixed(int(m["f_w"]), n, d)
    if m["f_w"] is not None:
        return f"{cardinal(int(m['f_w']))} {_fraction(n, d)}"
    return _fraction(n, d)


def _is_year_like(s: str) -> bool:
    return len(s) == 4 and s.isdigit() and 1000 <= int(s) <= 2099


def _unit_words(amount: str, unit: str) -> str:
    one, many = lex.UNITS[unit]
    return one if spoken.is_one(amount) else many


@rule(
    "range",
    rf"(?<![\w.,\-/])(?P<r_a>{NUM})\s?[-–—]\s?(?P<r_b>{NUM})(?![\w.,/:]?\d)"
    rf"(?:\s?(?P<r_unit>{_UNIT})(?![\w/²³]))?(?![\w-])",
)
def _range(m: re.Match[str], ctx: Context) -> str | None:
    a, b, unit = m["r_a"], m["r_b"], m["r_unit"]
    if (
        unit is not None
        and unit in lex.UNITS_NEED_DIGIT_CONTEXT
        and not m.group()[-len(unit) - 1].isdigit()
    ):
        return None
    if _is_year_like(a) and (_is_year_like(b) or (len(b) == 2 and unit is None)):
        second = spoken.year_words(int(b)) if len(b) == 4 else cardinal(int(b))
        return f"{spoken.year_words(int(a))} to {second}"
    words = f"{spoken.number(a)} to {spoken.number(b)}"
    return words + (f" {lex.UNITS[unit][1]}" if unit else "")


@rule(
    "unit",
    rf"(?<![\w.,])(?P<u_num>[-−]?{NUM})(?P<u_sp>\s?)(?P<u_unit>{_UNIT})(?![\w/²³]|\.\w)",
)
def _unit(m: re.Match[str], ctx: Context) -> str | None:
    unit = m["u_unit"]
    if unit in lex.UNITS_NEED_DIGIT_CONTEXT and m["u_sp"]:
        return None
    if unit == "in." and not ctx.rest(m.end()).startswith((" ", ")", ",")):
        return None
    words = f"{spoken.number(m['u_num'])} {_unit_words(m['u_num'], unit)}"
    return words + (_stop(m, ctx) if unit.endswith(".") else "")


@rule("ordinal", r"(?<![\w.,])(?P<o_num>\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th|ST|ND|RD|TH)(?!\w)")
def _ordinal(m: re.Match[str], ctx: Context) -> str:
    return spoken.ordinal_of(m["o_num"])


@rule("decade", r"(?<![\w'’.,])(?P<dc>\d{1,3}0)['’]?s(?!\w)|(?<!\w)['’](?P<dc2>\d0)s(?!\w)")
def _decade(m: re.Match[str], ctx: Context) -> str | None:
    value = int(m["dc"] or m["dc2"])
    if m["dc2"] is not None or value < 100:
        if value < 20:
            return None
        return spoken.plural_of_number_word(cardinal(value))
    if value < 1000:
        return None
    return spoken.plural_of_number_word(spoken.year_words(value))


@rule("short_year", r"(?<![\w'’])['’](?P<sy>\d{2})(?![\w'’])")
def _short_year(m: re.Match[str], ctx: Context) -> str:
    return spoken.two_digit_year(m["sy"])


@rule(
    "era",
    r"(?<![\w.,])(?P<e_y>\d{1,4})\s?(?P<e_era>BCE|BC|CE|AD|B\.C\.E?\.|A\.D\.|C\.E\.)(?!\w)"
    r"|(?<!\w)(?P<e2_era>AD|A\.D\.)\s(?P<e2_y>\d{1,4})(?!\w)",
)
def _era(m: re.Match[str], ctx: Context) -> str:
    if m["e2_era"] is not None:
        return f"A D {spoken.year_words(int(m['e2_y']))}"
    era = spoken.letters(m["e_era"].replace(".", ""))
    return f"{spoken.year_words(int(m['e_y']))} {era}" + _stop(m, ctx)


@rule(
    "version",
    r"(?<![\w.,])(?P<v_v>[vV])?(?P<v_num>\d+(?:\.\d+){2,}|(?<=[vV])\d+(?:\.\d+)?)(?![\w]|\.\d)",
)
def _version(m: re.Match[str], ctx: Context) -> str:
    parts = " point ".join(spoken.integer(p) for p in m["v_num"].split("."))
    return ("version " if m["v_v"] else "") + parts


@rule("number", rf"(?<![\w.,])(?P<n_sign>[-−+](?=[\d.]))?(?P<n_num>{NUM})(?!\w)")
def _number(m: re.Match[str], ctx: Context) -> str:
    written = m["n_num"]
    if m["n_sign"] is None and _is_year_like(written):
        before = ctx.word_before(m.start())
        after = ctx.rest(m.end())
        next_is_word = re.match(r"\s+[a-z]", after) is not None
        if (
            before.lower() in lex.YEAR_CONTEXT
            or before.rstrip(".") in lex.MONTHS
            or not next_is_word
            or (
                before.lower() in ("to", "and", "or")
                and _is_year_like(ctx.word_before(m.start() - len(before) - 1))
            )
        ):
            return spoken.year_words(int(written))
    sign = {"-": "minus ", "−": "minus ", "+": "plus "}.get(m["n_sign"] or "", "")
    return sign + spoken.number(written)


# --- letters and words ------------------------------------------------------------------------


def _say_word_part(part: str, ctx: Context) -> str:
    if part.isdigit():
        return spoken.integer(part) if len(part) <= 4 else spoken.digits(part)
    if part.isupper() and part not in lex.ACRONYMS and not ctx.shouting:
        return spoken.letters(part)
    if len(part) <= 3 and not spoken.has_vowel(part):
        return spoken.letters(part)
    if len(part) == 1:
        return part.upper()
    return part.capitalize() if part in lex.ACRONYMS else part


@rule(
    "alnum",
    r"(?<![\w.,])(?P<an>[A-Za-z]+-?\d+[A-Za-z\d]*|\d+[A-Za-z]+[A-Za-z\d]*)(?![\w])",
)
def _alnum(m: re.Match[str], ctx: Context) -> str | None:
    word = m["an"]
    parts = re.findall(r"[A-Za-z]+|\d+", word)
    if len(parts) == 2 and parts[0].isdigit() and parts[1].lower() == "x":
        return f"{spoken.integer(parts[0])} times"
    return " ".join(_say_word_part(p, ctx) for p in parts)


@rule(
    "title",
    rf"(?<![\w.])(?P<ti>{_TITLES})(?P<ti_dot>\.)?(?=\s+[A-Z(])|(?<![\w.])(?P<ti2>{_TITLES})\.(?!\w)",
)
def _title(m: re.Match[str], ctx: Context) -> str | None:
    if m["ti2"] is not None:  # no capital follows: "Baker St." "the Dr." "Smith Jr."
        name = m["ti2"]
        before = ctx.word_before(m.start())
        if (name in lex.STREET_SENSE and before[:1].isupper()) or before[:1].isdigit():
            word = lex.STREET_SENSE.get(name)
            if word is None:
                return None
            return word + _stop(m, ctx)
        if name in ("Jr", "Sr"):
            return lex.TITLES[name] + _stop(m, ctx)
        return None
    name = m["ti"]
    if m["ti_dot"] is None and name not in ("Mr", "Mrs", "Ms", "Dr", "St", "Mx"):
        return None
    before = ctx.word_before(m.start())
    if name in lex.STREET_SENSE and m["ti_dot"] and _is_street_name(ctx, m.start(), before):
        return lex.STREET_SENSE[name] + "."  # "Main St. Bring ...": a street, then a sentence
    return lex.TITLES[name]  # "Dr. Lee", and "Ask Dr. Who" (a sentence's first word is no name)


def _is_street_name(ctx: Context, pos: int, before: str) -> bool:
    """The word before `pos` names a street: a number, or a capitalised word that is not the
    first of its sentence."""
    if before[:1].isdigit():
        return True
    if not before[:1].isupper() or before in lex.NOT_NAMES:
        return False
    head = ctx.text[:pos].rstrip()
    head = head[: len(head) - len(before)].rstrip()
    return bool(head) and not head.endswith((".", "!", "?", ":", "\n"))


@rule("abbreviation", rf"(?<![\w.])(?P<ab>{_ABBR})(?![\w])")
def _abbreviation(m: re.Match[str], ctx: Context) -> str:
    return lex.ABBREVIATIONS[m["ab"]] + _stop(m, ctx)


@rule("dotted_letters", r"(?<![\w.])(?P<dl>(?:[A-Za-z]\.){2,})(?!\w)")
def _dotted(m: re.Match[str], ctx: Context) -> str:
    return spoken.letters(m["dl"]) + _stop(m, ctx)


@rule("before_number", rf"(?<![\w.])(?P<bn>{_BEFORE_NUM})\s?(?=\d)")
def _before_number(m: re.Match[str], ctx: Context) -> str:
    return lex.BEFORE_NUMBER[m["bn"]] + " "


@rule("hashtag", r"(?<![\w&])#(?P<ht>[A-Za-z]\w*)")
def _hashtag(m: re.Match[str], ctx: Context) -> str:
    return f"hashtag {m['ht']}"


def _roman_value(s: str) -> int | None:
    if not s or _ROMAN_VALID.fullmatch(s) is None:
        return None
    total = 0
    for i, c in enumerate(s):
        v = _ROMAN_VALUES[c]
        total += -v if i + 1 < len(s) and _ROMAN_VALUES[s[i + 1]] > v else v
    return total


@rule(
    "roman",
    rf"(?<![\w.])(?P<rk>{_ROMAN_KEYS})\s(?P<rk_n>[IVXLCDM]+)(?![\w'’])"
    r"|(?<![\w.])(?P<rn>[A-Z][a-z]+)\s(?P<rn_n>[IVX]{2,6})(?![\w'’])",
)
def _roman(m: re.Match[str], ctx: Context) -> str | None:
    if m["rk"] is not None:
        value = _roman_value(m["rk_n"])
        return None if value is None else f"{m['rk']} {cardinal(value)}"
    if m["rn"] in lex.NOT_NAMES or ctx.shouting:
        return None
    value = _roman_value(m["rn_n"])
    return None if value is None else f"{m['rn']} the {ordinal(value)}"


_WW = {
    "WWI": "World War one",
    "WWII": "World War two",
    "WW1": "World War one",
    "WW2": "World War two",
}


@rule("initialism", r"(?<![\w.&])(?P<in>[A-Z]{2,6})(?P<in_s>s|['’]s)?(?![\w])")
def _initialism(m: re.Match[str], ctx: Context) -> str | None:
    word = m["in"]
    suffix = m["in_s"] or ""
    if word in _WW and not suffix:
        return _WW[word]
    if _roman_value(word) is not None and set(word) <= set("IVX"):
        return None  # a numeral we could not place: left as written
    if ctx.shouting:
        return word.lower() + suffix.lower()
    if word in lex.ACRONYMS:
        return word.capitalize() + suffix
    if suffix == "s":
        suffix = "'s"
    return spoken.letters(word) + suffix


_SYMBOL_CHARS = "".join(re.escape(c) for c in lex.SYMBOLS)


@rule("symbol", rf"(?P<sy_c>[{_SYMBOL_CHARS}])")
def _symbol(m: re.Match[str], ctx: Context) -> str | None:
    c = m["sy_c"]
    if c == "~" and not re.match(r"\s?\d", ctx.rest(m.end())):
        return None
    if c in "<>" and not re.match(r"\s?[-\d]", ctx.rest(m.end())):
        return None
    return lex.SYMBOLS[c]


@rule("emphasis", r"(?<!\S)[*_]+(?=\w)|(?<=\w)[*_]+(?!\S)|^\s*[•·▪*-]\s+")
def _emphasis(m: re.Match[str], ctx: Context) -> str:
    return ""


@rule("slash", r"(?<=[A-Za-z])/(?=[A-Za-z])")
def _slash(m: re.Match[str], ctx: Context) -> str:
    before = ctx.word_before(m.start())
    return " " if before.lower() == "and" else " slash "


RULES = tuple(_RULES)
COMBINED = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in RULES), re.M)
SEPARATE = {name: (re.compile(pattern, re.M), handler) for name, pattern, handler in RULES}
ORDER = [name for name, _, _ in RULES]


def is_shouting(text: str) -> bool:
    """Most letters capitals, over at least three words: "I SAID NO MORE"."""
    letters = [c for c in text if c.isalpha()]
    caps_words = sum(1 for w in text.split() if len(w) > 1 and w.isupper())
    return caps_words >= 3 and sum(c.isupper() for c in letters) > 0.7 * len(letters)
