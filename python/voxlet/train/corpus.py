"""Training text: freely licensed English sentences -> a cleaned, deduplicated, split list. Pure
apart from reading the sources.

Sources:
- WordNet 3.0 (Princeton; the WordNet 3.0 licence, permissive: Debian's `wordnet-base` puts it
  in /usr/share/wordnet): its usage examples ("he emptied the contents of his pockets") and its
  glosses ("a power plant that uses wind turbines to generate electricity").
- Sentences made here from templates, for what WordNet lacks: numbers, dates, times, money and
  phone numbers (spelled out as words: the model learns words, the normaliser turns digits
  into them), questions, exclamations, and long sentences joined from two examples.
- Any plain text file, one sentence per line.

Every sentence's split (train / val / test) is a function of its text alone (a hash), so a
sentence keeps its split whatever else the corpus holds. The test split is the held-out
evaluation list: never trained or tuned on. (The Harvard / IEEE 1969 sentence lists are in none
of these sources, and must never be added: they are reserved for independent evaluation.)
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from voxlet.text.numbers import cardinal, ordinal, year

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_LICENCE = "WordNet 3.0 licence (Princeton University; permissive, notice kept)"
_CLEAN = re.compile(r"^[A-Za-z][A-Za-z ,.'?!;:-]*$")
_KEY = re.compile(r"[^a-z]+")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    source: str  # "wordnet-example", "wordnet-gloss", "template", "file:NAME"

    @property
    def key(self) -> str:
        """What makes two sentences the same: their letters, lowercased."""
        return _KEY.sub("", self.text.lower())

    @property
    def split(self) -> str:
        """ "test" for 2 % of texts, "val" for 1 %, else "train", by a hash of the key."""
        bucket = int.from_bytes(hashlib.sha1(self.key.encode()).digest()[:4], "big") % 100
        return "test" if bucket < 2 else "val" if bucket < 3 else "train"


def clean(text: str, min_words: int = 3, max_words: int = 40) -> str | None:
    """One sentence: whitespace collapsed, first letter capitalised, terminal punctuation
    added; None for text with digits, brackets, other symbols or a word count out of range."""
    text = " ".join(text.strip().strip('"').split())
    if not _CLEAN.match(text) or not min_words <= len(text.split()) <= max_words:
        return None
    text = text[0].upper() + text[1:]
    text = text.rstrip(",;:- ")
    return text if text.endswith((".", "?", "!")) else text + "."


def wordnet(folder: Path = WORDNET_DIR) -> Iterator[Sentence]:
    """WordNet's examples and glosses, in file order."""
    files = [folder / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet data not found ({missing[0]}): install Debian's wordnet-base "
            "(apt-get install wordnet-base) or pass --wordnet DIR"
        )
    for f in files:
        for line in f.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header, or no gloss
            for part in line.split(" | ", 1)[1].split(";"):
                part = part.strip()
                if part.startswith('"'):
                    text = clean(part.strip('"'))
                    source = "wordnet-example"
                else:
                    text = clean(part, min_words=5, max_words=25)
                    source = "wordnet-gloss"
                if text:
                    yield Sentence(text, source)


def common_nouns(folder: Path = WORDNET_DIR) -> list[str]:
    """Single-word nouns with at least one sense seen in WordNet's tagged corpus."""
    nouns = []
    for line in (folder / "index.noun").read_text(encoding="latin-1").splitlines():
        fields = line.split()
        if line.startswith("  ") or len(fields) < 6 or not fields[0].isalpha():
            continue
        n_pointers = int(fields[3])
        tagged = int(fields[5 + n_pointers])
        if tagged > 0 and len(fields[0]) >= 3:
            nouns.append(fields[0])
    return nouns


_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_QUESTIONS = (
    "Did you see the {n}?",
    "Where did you put the {n}?",
    "Is the {n} ready yet?",
    "Can you bring me the {n}, please?",
    "What do you think about the {n}?",
    "Why did the {n} stop working?",
    "Have you ever seen a {n} like this one?",
    "How much does the {n} cost?",
    "Would you like to borrow my {n}?",
    "Who left the {n} on the table?",
)


def templates(nouns: list[str], examples: list[str], count: int, seed: int) -> Iterator[Sentence]:
    """`count` sentences of numbers, dates, times, money, questions and long sentences."""
    rng = random.Random(seed)

    def num(lo: int, hi: int) -> str:
        return cardinal(rng.randint(lo, hi))

    makers = (
        lambda: (
            f"The meeting is on {rng.choice(_WEEKDAYS)}, {rng.choice(_MONTHS)} "
            f"the {ordinal(rng.randint(1, 28))}."
        ),
        lambda: f"She was born in {year(rng.randint(1900, 2025))}.",
        lambda: (
            f"The train leaves at {num(1, 12)} {num(10, 59)} in the "
            f"{rng.choice(['morning', 'afternoon', 'evening'])}."
        ),
        lambda: f"It costs {num(2, 999)} dollars and {num(2, 99)} cents.",
        lambda: f"There were {num(2, 99999)} people at the {rng.choice(nouns)} festival.",
        lambda: "Call me back at " + " ".join(cardinal(rng.randint(0, 9)) for _ in range(7)) + ".",
        lambda: f"The temperature dropped to minus {num(1, 40)} degrees last night.",
        lambda: f"Turn to chapter {num(1, 40)}, page {num(1, 900)}.",
        lambda: f"About {num(1, 99)} percent of the votes were counted by {num(1, 11)} o'clock.",
        lambda: (
            f"The {ordinal(rng.randint(1, 99))} runner crossed the line in {num(2, 59)} "
            f"minutes and {num(2, 59)} seconds."
        ),
        lambda: rng.choice(_QUESTIONS).format(n=rng.choice(nouns)),
        lambda: rng.choice(_QUESTIONS).format(n=rng.choice(nouns)),
        lambda: rng.choice(examples).rstrip(".") + "!",
        lambda: (
            rng.choice(examples).rstrip(".?!")
            + rng.choice([", and ", ", but ", "; meanwhile, ", ", because "])
            + rng.choice(examples)[0].lower()
            + rng.choice(examples)[1:]
        ),
    )
    made = 0
    while made < count:
        text = clean(rng.choice(makers)(), max_words=60)
        if text:
            made += 1
            yield Sentence(text, "template")


def text_file(path: Path) -> Iterator[Sentence]:
    """One sentence per non-empty line of a UTF-8 file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = clean(line, max_words=60)
        if text:
            yield Sentence(text, f"file:{path.name}")


def deduplicate(sentences: Iterable[Sentence]) -> list[Sentence]:
    """The first of each key, in order."""
    seen: set[str] = set()
    out = []
    for s in sentences:
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def estimated_seconds(text: str) -> float:
    """A speaking-time guess for corpus sizing, fitted to the teacher: 0.35 s + 0.29 s a word."""
    return 0.35 + 0.29 * len(text.split())


def build(
    hours: float,
    seed: int = 0,
    wordnet_dir: Path | None = WORDNET_DIR,
    files: Iterable[Path] = (),
    template_share: float = 0.15,
    gloss_share: float = 0.25,
) -> list[Sentence]:
    """About `hours` of speech: WordNet examples, glosses and templates in the given shares,
    plus every line of `files`; deduplicated, shuffled by `seed`."""
    rng = random.Random(seed)
    pool = deduplicate(wordnet(wordnet_dir)) if wordnet_dir is not None else []
    extra = deduplicate(s for f in files for s in text_file(Path(f)))
    budget = hours * 3600 - sum(estimated_seconds(s.text) for s in extra)
    examples = [s for s in pool if s.source == "wordnet-example"]
    glosses = [s for s in pool if s.source == "wordnet-gloss"]
    rng.shuffle(examples)
    rng.shuffle(glosses)
    chosen: list[Sentence] = []
    for share, group in ((1 - template_share - gloss_share, examples), (gloss_share, glosses)):
        spent = 0.0
        for s in group:
            if spent >= share * budget:
                break
            chosen.append(s)
            spent += estimated_seconds(s.text)
    if pool and template_share > 0:
        count = int(template_share * budget / estimated_seconds("a b c d e f g h i j"))
        nouns = common_nouns(wordnet_dir) if wordnet_dir is not None else ["thing"]
        texts = [s.text for s in examples[:5000]]
        chosen += templates(nouns, texts, count, seed)
    chosen = deduplicate(extra + chosen)
    rng.shuffle(chosen)
    return chosen
