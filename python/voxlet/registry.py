"""The official Pocket TTS models (reference 4.0.1 configs) as typed `ModelConfig`s.

All 6- and 24-layer models share one architecture; they differ in depth, hub revisions, text
rules and defaults. english_2026-01 conditions voices on the 512-d pre-bottleneck (inner_dim 512)
and has no `bos_before_voice`. The small 2026-10 models (english_2m / 7m / 18m and their `_refl`
forms, reward fine-tuned) add grouped-query attention, a low-rank text table, a z projection,
time-free flow heads and a smaller decoder side of Mimi (`_SMALL`).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxlet.config import (
    FlowConfig,
    FlowLMConfig,
    FlowLMTransformerConfig,
    LookupTableConfig,
    MimiConfig,
    MimiTransformerConfig,
    ModelConfig,
    QuantizerConfig,
    SEANetConfig,
)
from voxlet.errors import ConfigError

_CLONING_REPO = "hf://kyutai/pocket-tts"
_NO_CLONING_REPO = "hf://kyutai/pocket-tts-without-voice-cloning"

_ENGLISH_CHARS = {"’": "'", "‘": "'"}
_EUROPEAN_CHARS = {
    '"': "",
    "“": "",
    "”": "",
    "„": "",
    "«": "",
    "»": "",
    "’": "'",
    "‘": "'",
    "(": "",
    ")": "",
    "[": "",
    "]": "",
    "–": ",",
}
_GERMAN_CHARS = {**_EUROPEAN_CHARS, "—": ","}
_SPANISH_CHARS = {**_EUROPEAN_CHARS, "¡": "", "¿": ""}
_FRENCH_CHARS = {**_EUROPEAN_CHARS, ":": ","}


@dataclass(frozen=True, slots=True)
class _Entry:
    """How one official model differs from the shared architecture."""

    layers: int
    cloning_rev: str
    no_cloning_rev: str
    tokenizer_dir: str  # folder under languages/ ("" for the repo root)
    tokenizer_rev: str
    chars: dict[str, str]
    temperature: float = 0.7
    remove_semicolons: bool = False
    inner_dim: int = 32
    bos_before_voice: bool = True
    pad_short: bool = False
    frames_after_eos: int | None = None


_EN_TOK = "00eac05ed3d16bdc3f6b5d598874019c34a89214"
_EU_TOK = "4e1e0a3e611c51c0b4ed8174fc10f32a54644303"
_FR_TOK = "8843db76457a91db32077edf8dfcd1c0e3e755fd"
_R1 = "3e82814a68665eec246ff649b14c71331f955c06"
_R2 = "2dd944b099d06bb9edbd221fef138685711d9bf0"
_N1 = "1e08e6a23401048648a9fdcfde2f89348215c2a7"
_N2 = "4e1e0a3e611c51c0b4ed8174fc10f32a54644303"
_EN10 = ("db04f0e653473e5c7333c69686ac92b7460b0c1d", "a7056f505a4a8ca72d8b5fb1440071d6f1a35739")
_EN09 = ("983151f13aaeab1b13c1e5e3c2c383d49a9edf3f", "e7205b6ee50e654a5ea19f0e9df2b0813b05e921")

_ENTRIES: dict[str, _Entry] = {
    "english_2026-10": _Entry(6, *_EN10, "english_2026-09", _EN_TOK, _ENGLISH_CHARS, 0.3),
    "english_2026-09": _Entry(6, *_EN09, "english_2026-09", _EN_TOK, _ENGLISH_CHARS, 0.3),
    "english_2026-09_2": _Entry(
        6,
        "7f364c05d1be3faf2b234cdbe4cbb68a026d4218",
        "575d14372df89a4534bcb989870a34e77544b09f",
        "english_2026-09",
        _EN_TOK,
        _ENGLISH_CHARS,
        0.3,
    ),
    "english_2026-09_24l": _Entry(24, *_EN09, "english_2026-09_24l", _EN_TOK, _ENGLISH_CHARS, 0.3),
    "english_2026-04": _Entry(
        6,
        "19f95fe2df36e79fbd9f10008595cc4c977a0fcc",
        "d29db7978e464fb90cb3359ee0c69a273b9142cc",
        "english_2026-04",
        _EN_TOK,
        _ENGLISH_CHARS,
        0.3,
    ),
    "english_2026-04_24l": _Entry(
        24,
        "492522650173a0653b7575cdc25ae09810e5d741",
        "e81d79e8194ad4c7ce879c87a4258ef20cbf2487",
        "english_2026-04_24l",
        _EN_TOK,
        _ENGLISH_CHARS,
        0.3,
    ),
    "english_2026-01": _Entry(
        6,
        "39592ff23c9ef80098bb74895d104c26275fe2c9",
        "d29db7978e464fb90cb3359ee0c69a273b9142cc",
        "",
        _EN_TOK,
        _ENGLISH_CHARS,
        inner_dim=512,
        bos_before_voice=False,
        pad_short=True,
    ),
    "german": _Entry(6, _R1, _N1, "german", _EU_TOK, _GERMAN_CHARS, remove_semicolons=True),
    "german_24l": _Entry(
        24, _R2, _N2, "german_24l", _EU_TOK, _GERMAN_CHARS, remove_semicolons=True
    ),
    "italian": _Entry(6, _R1, _N1, "italian", _EU_TOK, _EUROPEAN_CHARS),
    "italian_24l": _Entry(24, _R1, _N1, "italian_24l", _EU_TOK, _EUROPEAN_CHARS),
    "portuguese": _Entry(6, _R1, _N1, "portuguese", _EU_TOK, _EUROPEAN_CHARS),
    "portuguese_24l": _Entry(24, _R2, _N2, "portuguese_24l", _EU_TOK, _EUROPEAN_CHARS),
    "spanish": _Entry(6, _R1, _N1, "spanish", _EU_TOK, _SPANISH_CHARS),
    "spanish_24l": _Entry(24, _R2, _N2, "spanish_24l", _EU_TOK, _SPANISH_CHARS),
    "french": _Entry(6, _R1, _N1, "french", _FR_TOK, _FRENCH_CHARS, remove_semicolons=True),
    "french_24l": _Entry(
        24, _R1, _N1, "french_24l", _FR_TOK, _FRENCH_CHARS, remove_semicolons=True
    ),
    "dutch": _Entry(6, _R1, _N1, "dutch", _EU_TOK, _EUROPEAN_CHARS),
    "dutch_24l": _Entry(24, _R2, _N2, "dutch_24l", _EU_TOK, _EUROPEAN_CHARS),
}


@dataclass(frozen=True, slots=True)
class _Small:
    """One small 2026-10 model's sizes (MODEL.md section 9.1)."""

    d_model: int
    heads: int
    attn_dim: int | None
    kv_heads: int | None
    ffn: int | None  # dim_feedforward; None: d_model (hidden_scale 1)
    rank: int | None
    flow_type: str
    flow_dim: int
    decoder_filters: int
    decoder_layers: int


_SMALL_SIZES = {
    "english_2m": _Small(112, 3, 192, 1, 96, 32, "pointwise", 64, 24, 4),
    "english_7m": _Small(224, 8, 512, 2, None, 64, "drifting", 192, 32, 12),
    "english_18m": _Small(512, 8, None, None, None, None, "drifting", 192, 32, 12),
}
_SMALL = {
    f"{base}{refl}_2026-10": sizes for base, sizes in _SMALL_SIZES.items() for refl in ("", "_refl")
}
_SMALL_TOK = "08ffc58775e62aad9409511b9591c9af626270f3"
_SMALL_CHARS = {"–": ",", "—": ",", "’": "'", "‘": "'"}

_ALIASES = {
    "english": "english_2026-10",
    **{name.removesuffix("_2026-10"): name for name in _SMALL},
}

# Default predefined voice per language family; everything else defaults to "alba".
DEFAULT_VOICES = {
    "italian": "giovanni",
    "spanish": "lola",
    "german": "juergen",
    "portuguese": "rafael",
    "french": "estelle",
}
PREDEFINED_VOICES = (
    "alba anna azelma bill_boerst caro_davy charles cosette eponine eve fantine george jane "
    "javert jean marius mary michael paul peter_yearsley stuart_bell vera "
    "giovanni lola juergen rafael estelle"
).split()


def model_names() -> list[str]:
    """Every official model name, aliases included."""
    return sorted([*_ENTRIES, *_SMALL, *_ALIASES])


def small_model_names() -> list[str]:
    """The small 2026-10 models by their short names (english_2m, ..., english_18m_refl)."""
    return sorted(name.removesuffix("_2026-10") for name in _SMALL)


def canonical_name(name: str) -> str:
    """Maps an alias ("english") to the model it stands for."""
    return _ALIASES.get(name, name)


def default_voice(name: str) -> str:
    language = canonical_name(name).split("_")[0]
    return DEFAULT_VOICES.get(language, "alba")


_LANGUAGE_CODES = {
    "english": "en",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "spanish": "es",
    "portuguese": "pt",
    "dutch": "nl",
}


def language_code(name: str) -> str:
    """The language an official model speaks, as a code: "english_2m" -> "en"."""
    family = canonical_name(name).split("_")[0]
    return _LANGUAGE_CODES.get(family, family)


def language_dir(name: str) -> str:
    """The hub folder (`languages/<dir>`) of a model, which also holds its predefined voices."""
    return "english" if name == "english" else canonical_name(name)


def _seanet(dimension: int, n_filters: int, kernel: int) -> SEANetConfig:
    return SEANetConfig(
        dimension=dimension,
        channels=1,
        n_filters=n_filters,
        n_residual_layers=1,
        ratios=[6, 5, 4],
        kernel_size=kernel,
        residual_kernel_size=3,
        last_kernel_size=3,
        dilation_base=2,
        pad_mode="constant",
        compress=2,
    )


def _codec_transformer(d: int, heads: int, layers: int, context: int, ffn: int):
    return MimiTransformerConfig(
        d_model=d,
        num_heads=heads,
        num_layers=layers,
        layer_scale=0.01,
        context=context,
        dim_feedforward=ffn,
        input_dimension=d,
        output_dimensions=[d],
    )


def _small_config(name: str, canonical: str, size: _Small) -> ModelConfig:
    """A small 2026-10 model, as its reference config has it."""
    folder = f"languages/{canonical}"
    mimi = MimiConfig(
        sample_rate=24000,
        channels=1,
        frame_rate=12.5,
        inner_dim=32,
        outer_dim=128,
        seanet=_seanet(512, 64, 7),
        transformer=_codec_transformer(512, 8, 2, 250, 2048),
        quantizer=QuantizerConfig(dimension=32, output_dimension=128),
        decoder_seanet=_seanet(128, size.decoder_filters, 3),
        decoder_transformer=_codec_transformer(128, 4, size.decoder_layers, 50, 384),
    )
    flow_lm = FlowLMConfig(
        flow=FlowConfig(dim=size.flow_dim, depth=4, type=size.flow_type),  # type: ignore[arg-type]
        transformer=FlowLMTransformerConfig(
            d_model=size.d_model,
            num_heads=size.heads,
            num_layers=8,
            hidden_scale=1,
            dim_feedforward=size.ffn,
            attn_dim=size.attn_dim,
            num_kv_heads=size.kv_heads,
        ),
        lookup_table=LookupTableConfig(
            dim=size.d_model,
            n_bins=4000,
            tokenizer="sentencepiece",
            tokenizer_path=f"{_NO_CLONING_REPO}/{folder}/tokenizer.model@{_SMALL_TOK}",
            rank=size.rank,
        ),
        insert_bos_before_voice=True,
        z_dim=64,
    )
    weights = f"{folder}/model.safetensors"
    return ModelConfig(
        flow_lm=flow_lm,
        mimi=mimi,
        weights_path=f"{_CLONING_REPO}/{weights}@{_EN10[0]}",
        weights_path_without_voice_cloning=f"{_NO_CLONING_REPO}/{weights}@{_EN10[1]}",
        default_temperature=0.3,
        default_eos_threshold=-1.0,
        replace_characters=dict(_SMALL_CHARS),
        name=name,
    )


def official_config(name: str) -> ModelConfig:
    """The typed config of an official model by name (see `model_names()`)."""
    small = _SMALL.get(canonical_name(name))
    if small is not None:
        return _small_config(name, canonical_name(name), small)
    entry = _ENTRIES.get(canonical_name(name))
    if entry is None:
        raise ConfigError(f"unknown model {name!r}; official models: {', '.join(model_names())}")
    folder = language_dir(name)
    tok_file = (
        f"languages/{entry.tokenizer_dir}/tokenizer.json"
        if entry.tokenizer_dir
        else ("tokenizer.json")
    )
    mimi = MimiConfig(
        sample_rate=24000,
        channels=1,
        frame_rate=12.5,
        inner_dim=entry.inner_dim,
        outer_dim=512,
        seanet=_seanet(512, 64, 7),
        transformer=_codec_transformer(512, 8, 2, 250, 2048),
        quantizer=QuantizerConfig(dimension=32, output_dimension=512),
    )
    flow_lm = FlowLMConfig(
        flow=FlowConfig(dim=512, depth=6),
        transformer=FlowLMTransformerConfig(
            d_model=1024, num_heads=16, num_layers=entry.layers, hidden_scale=4
        ),
        lookup_table=LookupTableConfig(
            dim=1024,
            n_bins=4000,
            tokenizer="tokenizers",
            tokenizer_path=f"{_NO_CLONING_REPO}/{tok_file}@{entry.tokenizer_rev}",
        ),
        insert_bos_before_voice=entry.bos_before_voice,
    )
    weights = f"languages/{folder}/model.safetensors"
    return ModelConfig(
        flow_lm=flow_lm,
        mimi=mimi,
        weights_path=f"{_CLONING_REPO}/{weights}@{entry.cloning_rev}",
        weights_path_without_voice_cloning=f"{_NO_CLONING_REPO}/{weights}@{entry.no_cloning_rev}",
        default_temperature=entry.temperature,
        model_recommended_frames_after_eos=entry.frames_after_eos,
        replace_characters=dict(entry.chars),
        remove_semicolons=entry.remove_semicolons,
        pad_with_spaces_for_short_inputs=entry.pad_short,
        name=name,
    )


def voice_url(model_name: str, voice: str) -> str:
    """hf:// location of a predefined voice state for a model."""
    folder = language_dir(model_name)
    canonical = canonical_name(model_name)
    rev = _EN10[1] if canonical in _SMALL else _ENTRIES[canonical].no_cloning_rev
    return f"{_NO_CLONING_REPO}/languages/{folder}/embeddings/{voice}.safetensors@{rev}"
