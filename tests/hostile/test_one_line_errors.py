"""Tracebacks turned into one-line typed errors (issue 13, class 5, in part): lone surrogates in
text, a binary file given as config, out-of-range seeds, degenerate configs."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import fixture_path
from tests.hostile.test_output_files import one_line_error
from tests.integration.cli_helpers import MODEL, run_voxlet
from tests.unit.test_config import assert_config_refused
from voxlet import GenerationOptions
from voxlet.config import ModelConfig
from voxlet.errors import ConfigError, TextError


def test_a_lone_surrogate_in_text_is_a_text_error(tiny_tts):
    with pytest.raises(TextError, match=r"invalid character U\+D800 at position 3"):
        tiny_tts.plans("hi \ud800 there", GenerationOptions())


def test_a_binary_file_as_config_names_the_file(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match=rf"{binary}: not a YAML text file"):
        ModelConfig.load(binary)
    done = run_voxlet("say", "Hi.", "--config", str(binary), "-o", str(tmp_path / "o.wav"))
    one_line_error(done, str(binary).encode())


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64])
def test_an_out_of_range_seed_is_refused(seed, tmp_path):
    with pytest.raises(ConfigError, match="seed: must be an integer from 0 to 2\\*\\*63 - 1"):
        GenerationOptions(seed=seed)
    done = run_voxlet("say", "Hi.", *MODEL, "-o", str(tmp_path / "o.wav"), "--seed", str(seed))
    one_line_error(done, b"seed: must be an integer")


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("flow_lm", "transformer", "num_heads"), 0, "flow_lm.transformer.num_heads: must be"),
        (("mimi", "transformer", "num_heads"), 0, "mimi.transformer: d_model, heads"),
        (("flow_lm", "flow", "depth"), 0, "flow_lm.flow.depth: must be positive"),
    ],
)
def test_a_degenerate_config_is_refused_naming_the_key(path, value, message):
    data = yaml.safe_load(fixture_path("tiny_config.yaml").read_text())
    assert_config_refused(data, path, value, message)
