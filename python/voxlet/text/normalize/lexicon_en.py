"""English word tables of the normaliser: abbreviations, units, currencies, months. Data only.

Every table is written here by hand (no third-party list); keys are matched case-sensitively
unless the table says otherwise.
"""

from __future__ import annotations

MONTHS = (
    "January February March April May June July August September October November December"
).split()
MONTH_ABBREVIATIONS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9,
    "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip
WEEKDAYS = {
    "Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday",
    "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday",
}  # fmt: skip

# Titles read before a name ("Dr. Lee" -> "Doctor Lee"); the period is theirs, not a full stop.
TITLES = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Mx": "Mix", "Dr": "Doctor",
    "Prof": "Professor", "St": "Saint", "Capt": "Captain", "Col": "Colonel", "Gen": "General",
    "Lt": "Lieutenant", "Sgt": "Sergeant", "Cpl": "Corporal", "Adm": "Admiral", "Gov": "Governor",
    "Sen": "Senator", "Rep": "Representative", "Pres": "President", "Rev": "Reverend",
    "Hon": "Honorable", "Fr": "Father", "Sr": "Senior", "Jr": "Junior", "Mt": "Mount",
    "Ft": "Fort", "Supt": "Superintendent", "Insp": "Inspector", "Det": "Detective",
}  # fmt: skip
# The same abbreviation after a name or a house number: "Baker St." -> "Baker Street".
STREET_SENSE = {"St": "Street", "Dr": "Drive"}
# Read the same wherever they stand; a trailing period is theirs (kept as a full stop when the
# sentence ends there).
ABBREVIATIONS = {
    "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "vs.": "versus",
    "vs": "versus", "approx.": "approximately", "Ave.": "Avenue", "Blvd.": "Boulevard",
    "Rd.": "Road", "Ln.": "Lane", "Hwy.": "Highway", "Apt.": "Apartment", "Inc.": "Incorporated",
    "Ltd.": "Limited", "Co.": "Company", "Corp.": "Corporation", "Bros.": "Brothers",
    "Dept.": "Department", "Univ.": "University", "Assn.": "Association", "Intl.": "International",
    "Govt.": "Government", "est.": "established", "Est.": "Established", "misc.": "miscellaneous",
    "cf.": "compare", "viz.": "namely", "w/": "with", "w/o": "without", "a.k.a.": "also known as",
    "aka": "also known as", "Ph.D.": "P H D", "PhD": "P H D", "Jr.": "Junior", "Sr.": "Senior",
    "OK": "okay", "Ok": "okay", "ASAP": "as soon as possible", "FYI": "for your information",
    "min.": "minimum", "max.": "maximum", "dept.": "department", "govt.": "government",
}  # fmt: skip
# Read only before a number: "No. 5" -> "number five", "p. 12" -> "page twelve".
BEFORE_NUMBER = {
    "No.": "number", "no.": "number", "Nos.": "numbers", "nos.": "numbers", "p.": "page",
    "pp.": "pages", "vol.": "volume", "Vol.": "volume", "ch.": "chapter", "Ch.": "chapter",
    "fig.": "figure", "Fig.": "figure", "sec.": "section", "Sec.": "section", "eq.": "equation",
    "Eq.": "equation", "ca.": "circa", "c.": "circa", "approx.": "approximately", "#": "number",
    "Rm.": "room", "Ste.": "suite", "ext.": "extension", "Ext.": "extension",
}  # fmt: skip

# Units after a number: (singular, plural). Keys case-sensitive ("mm" millimeter, "Mm" not).
UNITS = {
    "mm": ("millimeter", "millimeters"), "cm": ("centimeter", "centimeters"),
    "m": ("meter", "meters"), "km": ("kilometer", "kilometers"), "in.": ("inch", "inches"),
    "ft": ("foot", "feet"), "yd": ("yard", "yards"), "mi": ("mile", "miles"),
    "mg": ("milligram", "milligrams"), "g": ("gram", "grams"), "kg": ("kilogram", "kilograms"),
    "t": ("tonne", "tonnes"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"), "cl": ("centiliter", "centiliters"),
    "l": ("liter", "liters"), "L": ("liter", "liters"), "gal": ("gallon", "gallons"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"), "h": ("hour", "hours"), "ns": ("nanosecond", "nanoseconds"),
    "µs": ("microsecond", "microseconds"), "us": ("microsecond", "microseconds"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"), "W": ("watt", "watts"), "kW": ("kilowatt", "kilowatts"),
    "MW": ("megawatt", "megawatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"), "mV": ("millivolt", "millivolts"), "A": ("amp", "amps"),
    "mA": ("milliamp", "milliamps"), "mAh": ("milliamp hour", "milliamp hours"),
    "B": ("byte", "bytes"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Mb": ("megabit", "megabits"), "Gb": ("gigabit", "gigabits"),
    "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"), "dB": ("decibel", "decibels"),
    "px": ("pixel", "pixels"), "cal": ("calorie", "calories"),
    "kcal": ("kilocalorie", "kilocalories"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"), "ha": ("hectare", "hectares"),
    "sq ft": ("square foot", "square feet"), "sq mi": ("square mile", "square miles"),
    "km²": ("square kilometer", "square kilometers"), "m²": ("square meter", "square meters"),
    "m³": ("cubic meter", "cubic meters"), "cc": ("cubic centimeter", "cubic centimeters"),
    "rpm": ("revolution per minute", "revolutions per minute"), "psi": ("P S I", "P S I"),
    "x": ("times", "times"),
}  # fmt: skip
# Units that only count when written right after the number ("5s", "3d" are not units; "5 m" is).
UNITS_NEED_DIGIT_CONTEXT = frozenset({"t", "h", "A", "B", "us", "x"})

# Currencies: symbol or ISO code -> (major singular, major plural, minor singular, minor plural).
CURRENCY_SYMBOLS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "US$": ("US dollar", "US dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"), "₹": ("rupee", "rupees", "paisa", "paise"),
    "₩": ("won", "won", "jeon", "jeon"), "₽": ("ruble", "rubles", "kopek", "kopeks"),
    "₿": ("bitcoin", "bitcoins", "satoshi", "satoshis"),
}  # fmt: skip
CURRENCY_CODES = {
    "USD": ("US dollar", "US dollars", "cent", "cents"), "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"), "JPY": ("yen", "yen", "sen", "sen"),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "INR": ("rupee", "rupees", "paisa", "paise"), "CNY": ("yuan", "yuan", "fen", "fen"),
    "SEK": ("Swedish krona", "Swedish kronor", "öre", "öre"),
    "NOK": ("Norwegian krone", "Norwegian kroner", "øre", "øre"),
    "MXN": ("Mexican peso", "Mexican pesos", "centavo", "centavos"),
    "BTC": ("bitcoin", "bitcoins", "satoshi", "satoshis"),
}  # fmt: skip
SCALES = {
    "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
    "k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million",
    "bn": "billion", "B": "billion", "b": "billion", "tn": "trillion", "T": "trillion",
}  # fmt: skip

# All-caps words said as words, not letters. Everything else of 2-5 capitals is spelled.
ACRONYMS = frozenset(
    (
        "NASA NATO UNESCO UNICEF OPEC LASER RADAR SCUBA AIDS COVID FIFA NAFTA ASCII GIF JPEG "
        "PIN RAM ROM SIM CAPTCHA WASP YOLO FOMO NIMBY SWAT POTUS SCOTUS NASDAQ IKEA LEGO ZIP "
        "UEFA INTERPOL ANSI OSHA FEMA DARPA ESA CERN WYSIWYG GUI SQL SONAR LIDAR TOEFL"
    ).split()
)
# Capitalised common words that are not names before a roman numeral ("The II" is not a king).
NOT_NAMES = frozenset(
    "The A An And Or But Of In On At To For With By I We You He She It They".split()
)
ROMAN_KEYWORDS = frozenset(
    (
        "Chapter Part Volume Book Act Scene Section Article War Phase Stage Level Episode Season "
        "Title Type Class Vol. Ch. Pt. Appendix Psalm Canto Movement Round Grade Category Tier"
    ).split()
)
LETTER_NAMES = {c: c.upper() for c in "abcdefghijklmnopqrstuvwxyz"}
SYMBOLS = {
    "&": "and", "+": "plus", "=": "equals", "@": "at", "×": "times", "÷": "divided by",
    "±": "plus or minus", "≈": "approximately", "≠": "is not equal to", "≤": "at most",
    "≥": "at least", "<": "less than", ">": "greater than", "%": "percent", "°": "degrees",
    "€": "euros", "$": "dollars", "£": "pounds", "§": "section", "¶": "paragraph",
    "©": "copyright", "®": "registered", "™": "trademark", "→": "to", "←": "from",
    "^": "to the power of", "~": "about", "№": "number", "‰": "per mille",
}  # fmt: skip
VULGAR_FRACTIONS = {
    "½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5),
    "⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8),
    "⅞": (7, 8),
}  # fmt: skip
# Words after which a four-digit number is a year ("in 1999", "since 2004").
YEAR_CONTEXT = frozenset(
    (
        "in since by from until till of year years circa around before after during early late "
        "mid summer winter spring autumn fall born died c. ca. between the class season"
    ).split()
)
