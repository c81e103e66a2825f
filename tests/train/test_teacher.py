"""The teacher speaks (offline), the teacher corpus resumes, and the runtime never imports it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import fixture_path
from tests.train.test_corpus import wordnet_dir  # noqa: F401 (a fixture)
from voxlet.train import corpus, data
from voxlet.train.dataset import Corpus
from voxlet.train.teacher import PiperTeacher


@pytest.fixture(scope="module")
def teacher() -> PiperTeacher:
    return PiperTeacher()


def test_the_teacher_speaks_a_sentence_at_24k(teacher):
    audio = teacher.speak("The dog barked at the stranger.")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < len(audio) / 24000 < 4.0  # seven words
    assert 0.01 < float(np.sqrt(np.mean(audio**2))) < 0.7


def test_teacher_corpus_plans_once_resumes_and_grows(wordnet_dir, tmp_path):  # noqa: F811
    out = tmp_path / "corpus"
    data.from_teacher(out, 0.004, wordnet_dir=wordnet_dir, limit=2)
    plan = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    assert len(Corpus(out).utterances) == 2 < len(plan)
    data.from_teacher(out, 0.004, wordnet_dir=wordnet_dir)  # carries on with the rest
    c = Corpus(out)
    assert [u.text for u in c.utterances] == [p["text"] for p in plan]
    assert all(u.seconds > 0.5 for u in c.utterances)
    info = json.loads((out / "info.json").read_text())
    assert "piper" in info["audio"] and "WordNet" in info["text"][0]
    data.from_teacher(out, 0.008, wordnet_dir=wordnet_dir, limit=1)  # more hours: a longer plan
    grown = (out / "sentences.jsonl").read_text().splitlines()
    assert len(grown) > len(plan) and grown[: len(plan)] == [json.dumps(p) for p in plan]


def test_the_runtime_does_not_import_the_teacher_or_the_asr():
    code = f"""
import sys
from voxlet import TTS, GenerationOptions
tts = TTS.load(config={str(fixture_path("tiny_config.yaml"))!r},
               weights={str(fixture_path("tiny_model.safetensors"))!r},
               tokenizer={str(fixture_path("tokenizer.model"))!r})
voice = tts.voice({str(fixture_path("tiny_voice.safetensors"))!r})
tts.synthesize("Hello.", voice, GenerationOptions(max_frames=2, eos_threshold=1e9))
import voxlet.cli; voxlet.cli.build_parser()
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("piper", "onnxruntime", "pocketsphinx"))
print(bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == "[]"


def test_one_split_can_be_spoken_first(wordnet_dir, tmp_path):  # noqa: F811
    out = tmp_path / "corpus"
    data.from_teacher(out, 0.004, wordnet_dir=wordnet_dir, limit=2, split="train")
    plan = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    first_train = [p["text"] for p in plan if corpus.Sentence(p["text"], "").split == "train"]
    assert [u.text for u in Corpus(out).utterances] == first_train[:2]
