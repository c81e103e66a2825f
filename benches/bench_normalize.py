"""Text normalisers side by side: accuracy on voxlet's English test set and time per sentence.

The test set (tests/data/normalize_en.tsv, 400 cases in 22 categories) was written with voxlet's
rules, so voxlet's own score on it is 100 % by construction (its unit tests require it); the
other engines' scores say how far each is from the same readings. Scoring is case- and
punctuation-blind, hyphens count as spaces and "and" is ignored ("one hundred and five" ==
"one hundred five"). Candidates are measured when importable (install them anywhere and pass
`--path`): normt2s, kitten-text-processing, wetext, nemo-text-processing.

    .venv/bin/python benches/bench_normalize.py [--path /tmp/candlib] [--show 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CASES = ROOT / "tests" / "data" / "normalize_en.tsv"


def emit(**row) -> None:
    print(json.dumps({"bench": "normalize", **row}), flush=True)


def key(text: str) -> str:
    """What scoring compares: lowercase words, no punctuation, hyphens as spaces, no "and"."""
    text = text.lower().replace("-", " ").replace("’", "'")
    text = re.sub(r"[^\w' ]", " ", text)
    return " ".join(w for w in text.split() if w != "and")


def read_cases(path: Path = CASES) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            category, written, said = line.split("\t")
            rows.append((category, written, said))
    return rows


def engines() -> dict[str, Callable[[str], str]]:
    from voxlet.text.normalize import normalize

    found: dict[str, Callable[[str], str]] = {"voxlet": normalize}
    try:
        import normt2s

        found["normt2s"] = normt2s.normalize
    except ImportError:
        emit(engine="normt2s", error="not installed")
    try:
        import kitten_text_processing as kitten

        found["kitten-text-processing"] = lambda s: kitten.normalize_text(s, "en")
    except ImportError:
        emit(engine="kitten-text-processing", error="not installed")
    try:
        from wetext import Normalizer

        wetext = Normalizer(lang="en", operator="tn")
        found["wetext"] = wetext.normalize
    except ImportError:
        emit(engine="wetext", error="not installed")
    try:
        from nemo_text_processing.text_normalization.normalize import Normalizer as Nemo

        nemo = Nemo(input_case="cased", lang="en")
        found["nemo-text-processing"] = lambda s: nemo.normalize(s, punct_post_process=True)
    except ImportError:
        emit(engine="nemo-text-processing", error="not installed")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="append", default=[], help="extra import path")
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over the set")
    parser.add_argument("--show", type=int, default=0, help="print this many misses per engine")
    parser.add_argument("--engine", action="append", help="only these engines (default: all)")
    args = parser.parse_args()
    sys.path[1:1] = args.path
    cases = read_cases()
    for name, run in engines().items():
        if args.engine and name not in args.engine:
            continue
        per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        misses = []
        crashes = 0
        for category, written, said in cases:
            try:
                got = run(written)
            except Exception as exc:  # a crash is a miss, and named
                got = f"<{type(exc).__name__}>"
                crashes += 1
            ok = key(got) == key(said)
            per_category[category][0] += ok
            per_category[category][1] += 1
            if not ok:
                misses.append((written, got, said))
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for _, written, _ in cases:
                try:
                    run(written)
                except Exception:
                    pass
            times.append((time.perf_counter() - start) / len(cases))
        correct = sum(c for c, _ in per_category.values())
        emit(
            engine=name,
            cases=len(cases),
            correct=correct,
            accuracy=round(correct / len(cases), 4),
            crashes=crashes,
            us_per_sentence=round(statistics.median(times) * 1e6, 1),
            by_category={k: f"{c}/{n}" for k, (c, n) in sorted(per_category.items())},
        )
        for written, got, said in misses[: args.show]:
            print(f"  {name}: {written!r}\n    got  {got!r}\n    want {said!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
