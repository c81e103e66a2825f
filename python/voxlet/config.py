"""Typed, strict model configs, read from the reference's YAML schema, and the VOXLET_* env vars.

A config is a tree of frozen dataclasses. `ModelConfig.from_dict` accepts exactly the keys of the
reference schema (the fixture's `tiny_config.yaml` is one) and names any unknown or missing key by
its dotted path. Official models are built in `voxlet.registry`. This is the one module that reads
environment variables.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voxlet.constants import LATENT_DIM, SAMPLE_RATE_HZ
from voxlet.errors import ConfigError

ENV_VARS = ("VOXLET_WEIGHTS", "VOXLET_TOKENIZER", "VOXLET_CACHE_DIR", "VOXLET_OFFLINE")


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """The flow head. `lsd`: two time embedders, `lsd_steps` evaluations a frame; `pointwise`
    (english_2m) and `drifting` (english_7m, 18m): no time inputs, one evaluation a frame,
    returning x0 + f(z, x0) and f(z, x0) respectively."""

    dim: int
    depth: int
    type: Literal["lsd", "pointwise", "drifting"] = "lsd"

    @property
    def timed(self) -> bool:
        """Whether the head takes time inputs (has time embedders)."""
        return self.type == "lsd"


@dataclass(frozen=True, slots=True)
class FlowLMTransformerConfig:
    d_model: int
    num_heads: int
    num_layers: int
    hidden_scale: int = 4
    max_period: float = 10000.0
    dim_feedforward: int | None = None
    num_kv_heads: int | None = None
    attn_dim: int | None = None

    @property
    def ffn_dim(self) -> int:
        return self.dim_feedforward or self.d_model * self.hidden_scale

    @property
    def attention_dim(self) -> int:
        """Width of the queries and of the concatenated attention output (A)."""
        return self.attn_dim or self.d_model

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads (G); each serves num_heads / G contiguous query heads."""
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.attention_dim // self.num_heads


@dataclass(frozen=True, slots=True)
class LookupTableConfig:
    dim: int
    n_bins: int
    tokenizer: Literal["sentencepiece", "tokenizers"]
    tokenizer_path: str
    rank: int | None = None


@dataclass(frozen=True, slots=True)
class FlowLMConfig:
    flow: FlowConfig
    transformer: FlowLMTransformerConfig
    lookup_table: LookupTableConfig
    insert_bos_before_voice: bool = True
    dtype: Literal["float32"] = "float32"
    z_dim: int | None = None
    weights_path: str | None = None


@dataclass(frozen=True, slots=True)
class SEANetConfig:
    dimension: int
    channels: int
    n_filters: int
    n_residual_layers: int
    ratios: list[int]
    kernel_size: int
    residual_kernel_size: int
    last_kernel_size: int
    dilation_base: int
    pad_mode: Literal["constant"]
    compress: int


@dataclass(frozen=True, slots=True)
class MimiTransformerConfig:
    d_model: int
    num_heads: int
    num_layers: int
    layer_scale: float
    context: int
    dim_feedforward: int
    input_dimension: int
    output_dimensions: list[int]
    max_period: float = 10000.0


@dataclass(frozen=True, slots=True)
class QuantizerConfig:
    dimension: int
    output_dimension: int


@dataclass(frozen=True, slots=True)
class MimiConfig:
    sample_rate: int
    channels: int
    frame_rate: float
    inner_dim: int
    outer_dim: int
    seanet: SEANetConfig
    transformer: MimiTransformerConfig
    quantizer: QuantizerConfig
    dtype: Literal["float32"] = "float32"
    weights_path: str | None = None
    decoder_seanet: SEANetConfig | None = None
    decoder_transformer: MimiTransformerConfig | None = None

    @property
    def decoder_seanet_config(self) -> SEANetConfig:
        """The decoder side's SEANet: `decoder_seanet`, else the encoder's `seanet`."""
        return self.decoder_seanet or self.seanet

    @property
    def decoder_transformer_config(self) -> MimiTransformerConfig:
        """The decoder side's transformer: `decoder_transformer`, else `transformer`."""
        return self.decoder_transformer or self.transformer

    @property
    def hop_samples(self) -> int:
        """Samples per SEANet step (120 for ratios [6, 5, 4])."""
        hop = 1
        for r in self.seanet.ratios:
            hop *= r
        return hop

    @property
    def samples_per_frame(self) -> int:
        return round(self.sample_rate / self.frame_rate)

    @property
    def steps_per_frame(self) -> int:
        """SEANet steps (200 Hz) per latent frame (12.5 Hz): 16."""
        return self.samples_per_frame // self.hop_samples


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One Pocket TTS model: architecture, text rules, default knobs and where its files live.

    Relative paths in `weights_path` and `flow_lm.lookup_table.tokenizer_path` are resolved
    against `base_dir` (the config file's folder).
    """

    flow_lm: FlowLMConfig
    mimi: MimiConfig
    weights_path: str | None = None
    weights_path_without_voice_cloning: str | None = None
    default_temperature: float = 0.7
    default_eos_threshold: float = -4.0
    model_recommended_frames_after_eos: int | None = None
    replace_characters: dict[str, str] = field(default_factory=dict)
    remove_semicolons: bool = False
    pad_with_spaces_for_short_inputs: bool = False
    name: str = "custom"
    base_dir: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @staticmethod
    def from_dict(
        data: dict[str, Any], *, name: str = "custom", base_dir: str | None = None
    ) -> ModelConfig:
        """Builds a config from a reference-schema mapping, rejecting unknown keys."""
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
        data = {**data, "name": name, "base_dir": base_dir}
        built = _build(ModelConfig, data, "")
        assert isinstance(built, ModelConfig)
        return built

    @staticmethod
    def load(path: str | Path) -> ModelConfig:
        """Reads a reference-schema YAML config file."""
        import yaml

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not a YAML text file (not UTF-8 at byte {e.start})") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from e
        return ModelConfig.from_dict(data or {}, name=p.stem, base_dir=str(p.resolve().parent))

    def resolve(self, location: str | None) -> str | None:
        """Resolves a relative local path against the config's folder; URLs pass through."""
        if location is None or "://" in location or self.base_dir is None:
            return location
        p = Path(location).expanduser()
        return str(p if p.is_absolute() else Path(self.base_dir) / p)

    @property
    def sample_rate_hz(self) -> int:
        return self.mimi.sample_rate

    @property
    def voice_dim(self) -> int:
        """Width of the voice-conditioning latents fed through `speaker_proj` (inner_dim)."""
        return self.mimi.inner_dim


def _validate(cfg: ModelConfig) -> None:
    """Checks the relations the implementation relies on; raises ConfigError naming the key."""
    fl, mi = cfg.flow_lm, cfg.mimi
    tr = fl.transformer
    for key, value in {
        "flow_lm.transformer.d_model": tr.d_model,
        "flow_lm.transformer.num_heads": tr.num_heads,
        "flow_lm.transformer.num_layers": tr.num_layers,
        "flow_lm.transformer.hidden_scale": tr.hidden_scale,
        "flow_lm.flow.dim": fl.flow.dim,
        "flow_lm.flow.depth": fl.flow.depth,
        "flow_lm.lookup_table.n_bins": fl.lookup_table.n_bins,
        "mimi.frame_rate": mi.frame_rate,  # divides the sample rate below
    }.items():
        if not value > 0:  # NaN is not positive either
            raise ConfigError(f"{key}: must be positive, got {value}")
    for key, opt in {
        "flow_lm.transformer.attn_dim": tr.attn_dim,
        "flow_lm.transformer.num_kv_heads": tr.num_kv_heads,
        "flow_lm.transformer.dim_feedforward": tr.dim_feedforward,
        "flow_lm.lookup_table.rank": fl.lookup_table.rank,
        "flow_lm.z_dim": fl.z_dim,
    }.items():
        unset_by_zero = key == "flow_lm.transformer.dim_feedforward"  # 0 means d_model x scale
        if opt is not None and (opt < 0 or (opt == 0 and not unset_by_zero)):
            raise ConfigError(f"{key}: must be positive when set, got {opt}")
    if tr.attention_dim % tr.num_heads or tr.head_dim % 2:
        raise ConfigError(
            f"flow_lm.transformer.attn_dim: {tr.attention_dim} must split into "
            f"{tr.num_heads} heads of even width"
        )
    if tr.num_heads % tr.kv_heads:
        raise ConfigError(
            f"flow_lm.transformer.num_kv_heads: {tr.kv_heads} must divide num_heads "
            f"({tr.num_heads})"
        )
    if fl.lookup_table.dim != tr.d_model:
        raise ConfigError(
            f"flow_lm.lookup_table.dim: must equal flow_lm.transformer.d_model "
            f"({tr.d_model}), got {fl.lookup_table.dim}"
        )
    if mi.sample_rate != SAMPLE_RATE_HZ:
        raise ConfigError(f"mimi.sample_rate: must be {SAMPLE_RATE_HZ}, got {mi.sample_rate}")
    if mi.channels != 1 or mi.seanet.channels != 1 or mi.decoder_seanet_config.channels != 1:
        raise ConfigError("mimi.channels: only mono models are supported")
    if mi.quantizer.dimension != LATENT_DIM:
        raise ConfigError(f"mimi.quantizer.dimension: must be {LATENT_DIM}")
    if mi.decoder_seanet_config.ratios != mi.seanet.ratios:
        raise ConfigError("mimi.decoder_seanet.ratios: must equal mimi.seanet.ratios")
    if (
        mi.hop_samples <= 0
        or mi.sample_rate % mi.hop_samples
        or (mi.samples_per_frame % mi.hop_samples)
    ):
        raise ConfigError("mimi.seanet.ratios: hop must divide the samples of one frame")
    if abs(mi.samples_per_frame * mi.frame_rate - mi.sample_rate) > 1e-6:
        raise ConfigError("mimi.frame_rate: sample_rate / frame_rate must be an integer")
    sides = [("seanet", "transformer", mi.seanet, mi.transformer)]
    sides.append(
        (
            "decoder_seanet",
            "decoder_transformer",
            mi.decoder_seanet_config,
            mi.decoder_transformer_config,
        )
    )
    for sea_key, tr_key, sea, t in sides:
        if min(t.d_model, t.num_heads, t.num_layers, t.context, t.dim_feedforward) <= 0:
            raise ConfigError(
                f"mimi.{tr_key}: d_model, heads, layers, context and FFN must be positive"
            )
        if t.d_model % t.num_heads or t.d_model != sea.dimension or (t.d_model // t.num_heads) % 2:
            raise ConfigError(
                f"mimi.{tr_key}.d_model: must equal mimi.{sea_key}.dimension and split into "
                "num_heads heads of even width"
            )
        if (
            sea.n_filters <= 0
            or sea.compress <= 0
            or sea.n_filters * 2 ** len(sea.ratios) % sea.compress
        ):
            raise ConfigError(f"mimi.{sea_key}.compress: must divide every SEANet width")
    if mi.quantizer.output_dimension != mi.decoder_seanet_config.dimension:
        raise ConfigError(
            f"mimi.quantizer.output_dimension: must equal the decoder's width "
            f"({mi.decoder_seanet_config.dimension}), got {mi.quantizer.output_dimension}"
        )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _build(tp: Any, value: Any, path: str) -> Any:
    """Converts plain YAML data into the annotated type `tp`, strictly; `path` is the dotted key."""
    where = path or "config"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _build(option, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{where}: must be one of {allowed}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_build(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _build(kt, k, f"{path}.{k}"): _build(vt, v, f"{path}.{k}") for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build_dataclass(tp: Any, value: Any, path: str) -> Any:
    where = path or "config"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    for key in value:
        if key not in fields:
            dotted = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{dotted}: unknown key{hint}")
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{path}.{name}" if path else name
        if name in value:
            kwargs[name] = _build(hints[name], value[name], dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{dotted}: missing required key")
    return tp(**kwargs)


@dataclass(frozen=True, slots=True)
class Environment:
    """The VOXLET_* environment variables, read in one place."""

    weights: str | None
    tokenizer: str | None
    cache_dir: str | None
    offline: bool

    @staticmethod
    def read() -> Environment:
        offline = os.environ.get("VOXLET_OFFLINE", "") not in ("", "0", "false", "False")
        hf_offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        return Environment(
            weights=os.environ.get("VOXLET_WEIGHTS") or None,
            tokenizer=os.environ.get("VOXLET_TOKENIZER") or None,
            cache_dir=os.environ.get("VOXLET_CACHE_DIR") or None,
            offline=offline or hf_offline,
        )
