from __future__ import annotations

import pytest
import yaml

from tests.conftest import fixture_path
from voxlet.config import ENV_VARS, Environment, ModelConfig
from voxlet.errors import ConfigError
from voxlet.registry import model_names, official_config


def _tiny() -> dict:
    return yaml.safe_load(fixture_path("tiny_config.yaml").read_text())


def test_tiny_config_loads_with_paths_relative_to_its_folder():
    cfg = ModelConfig.load(fixture_path("tiny_config.yaml"))
    assert cfg.flow_lm.transformer.d_model == 64 and cfg.mimi.steps_per_frame == 16
    assert cfg.default_temperature == 0.3
    assert cfg.resolve(cfg.weights_path) == str(fixture_path("tiny_model.safetensors"))


@pytest.mark.parametrize(
    "path,value,message",
    [
        (
            ("mimi", "seanet", "ratio"),
            [6, 5, 4],
            "mimi.seanet.ratio: unknown key; did you mean 'ratios'?",
        ),
        (("flow_lm", "flow", "dim"), "48", "flow_lm.flow.dim: expected an integer"),
        (
            ("flow_lm", "lookup_table", "tokenizer"),
            "bpe",
            "flow_lm.lookup_table.tokenizer: must be one of",
        ),
        (
            ("flow_lm", "transformer", "num_kv_heads"),
            2,
            "flow_lm.transformer.num_kv_heads: set to 2",
        ),
        (("mimi", "sample_rate"), 16000, "mimi.sample_rate: must be 24000"),
    ],
)
def test_bad_values_are_named_by_dotted_path(path, value, message):
    data = _tiny()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as e:
        ModelConfig.from_dict(data)
    assert message in str(e.value)


def test_missing_key_is_named():
    data = _tiny()
    del data["mimi"]["transformer"]["context"]
    with pytest.raises(ConfigError, match=r"mimi\.transformer\.context: missing required key"):
        ModelConfig.from_dict(data)


def test_unreadable_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        ModelConfig.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow_lm: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ModelConfig.load(bad)


@pytest.mark.parametrize("name", model_names())
def test_every_official_model_builds(name):
    cfg = official_config(name)
    assert cfg.weights_path and "@" in cfg.weights_path  # pinned revision
    assert cfg.flow_lm.transformer.num_layers == (24 if name.endswith("_24l") else 6)


def test_official_model_flags():
    old = official_config("english_2026-01")
    assert old.mimi.inner_dim == 512 and not old.flow_lm.insert_bos_before_voice
    assert old.pad_with_spaces_for_short_inputs and old.default_temperature == 0.7
    assert official_config("english").default_temperature == 0.3
    assert official_config("german").remove_semicolons
    assert official_config("spanish").replace_characters["¿"] == ""
    with pytest.raises(ConfigError, match="unknown model 'klingon'"):
        official_config("klingon")


def test_environment_variables_are_read_in_one_place(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.setenv(var, "1" if var == "VOXLET_OFFLINE" else f"/x/{var}")
    env = Environment.read()
    assert (env.weights, env.tokenizer, env.cache_dir, env.offline) == (
        "/x/VOXLET_WEIGHTS",
        "/x/VOXLET_TOKENIZER",
        "/x/VOXLET_CACHE_DIR",
        True,
    )
