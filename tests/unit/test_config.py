from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from tests.conftest import fixture_path
from voxlet.config import ENV_VARS, Environment, ModelConfig
from voxlet.errors import ConfigError
from voxlet.registry import model_names, official_config, small_model_names


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
        (("mimi", "sample_rate"), 16000, "mimi.sample_rate: must be 24000"),
        # a fuzz draw: a zero frame rate divided by zero before it was checked
        (("mimi", "frame_rate"), 0, "mimi.frame_rate: must be positive, got 0"),
        (("mimi", "frame_rate"), float("nan"), "mimi.frame_rate: must be positive, got nan"),
    ],
)
def test_bad_values_are_named_by_dotted_path(path, value, message):
    assert_config_refused(_tiny(), path, value, message)


def assert_config_refused(data: dict, path: tuple[str, ...], value: object, message: str) -> None:
    """`data` with the key at `path` set to `value` is refused with `message` in the error."""
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
    small = "_2m" in name or "_7m" in name or "_18m" in name
    layers = 8 if small else 24 if name.endswith("_24l") else 6
    assert cfg.flow_lm.transformer.num_layers == layers


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


REFERENCE_CONFIGS = (
    fixture_path("small/small_config.yaml").parents[2] / "spec" / "reference-configs"
)


@pytest.mark.parametrize("name", small_model_names())
def test_small_models_match_the_reference_configs(name):
    """The registry's typed configs equal the reference package's own YAML files, field for
    field (paths, pinned revisions, text rules, every size)."""
    yaml_file = REFERENCE_CONFIGS / f"{name}_2026-10.yaml"
    assert yaml_file.is_file(), yaml_file
    want = ModelConfig.load(yaml_file)
    got = official_config(name)
    assert replace(got, name="x", base_dir=None) == replace(want, name="x", base_dir=None)
    assert got.default_eos_threshold == -1.0 and got.flow_lm.z_dim == 64
    assert official_config(f"{name}_2026-10") == replace(got, name=f"{name}_2026-10")


def test_small_configs_fall_back_to_the_standard_layout():
    """Each small-layout field, absent, falls back exactly to the standard layout."""
    cfg = ModelConfig.load(fixture_path("tiny_config.yaml"))
    tr = cfg.flow_lm.transformer
    assert (tr.attention_dim, tr.kv_heads, tr.head_dim) == (64, 4, 16)
    assert cfg.mimi.decoder_seanet_config is cfg.mimi.seanet
    assert cfg.mimi.decoder_transformer_config is cfg.mimi.transformer
    assert cfg.flow_lm.flow.timed and cfg.default_eos_threshold == -4.0
    small = ModelConfig.load(fixture_path("small/small_config.yaml"))
    st = small.flow_lm.transformer
    assert (st.attention_dim, st.kv_heads, st.head_dim, st.ffn_dim) == (96, 2, 16, 80)
    assert small.mimi.decoder_transformer_config.context == 50
    assert not small.flow_lm.flow.timed


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("flow_lm", "transformer", "num_kv_heads"), 4, "num_kv_heads: 4 must divide num_heads"),
        (("flow_lm", "transformer", "attn_dim"), 100, "attn_dim: 100 must split into 6 heads"),
        (("flow_lm", "transformer", "num_heads"), 0, "num_heads: must be positive"),
        (("flow_lm", "z_dim"), 0, "flow_lm.z_dim: must be positive when set"),
        (("flow_lm", "flow", "type"), "euler", "flow_lm.flow.type: must be one of"),
        (("mimi", "quantizer", "output_dimension"), 48, "must equal the decoder's width (40)"),
        (("mimi", "decoder_transformer", "d_model"), 48, "decoder_transformer.d_model: must equal"),
    ],
)
def test_bad_small_values_are_named(path, value, message):
    data = yaml.safe_load(fixture_path("small/small_config.yaml").read_text())
    assert_config_refused(data, path, value, message)
