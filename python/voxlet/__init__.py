"""voxlet: CPU-first streaming text-to-speech for the Pocket TTS model family."""

from voxlet import _process  # noqa: F401  first: tunes OpenMP and malloc before torch loads
from voxlet.errors import (
    ConfigError,
    DownloadError,
    SinkError,
    StreamError,
    TextError,
    VoiceError,
    VoxletError,
    WeightsError,
)
from voxlet.options import GenerationOptions
from voxlet.tts import TTS, Voice

__version__ = "0.1.0"

__all__ = [
    "TTS",
    "ConfigError",
    "DownloadError",
    "GenerationOptions",
    "SinkError",
    "StreamError",
    "TextError",
    "Voice",
    "VoiceError",
    "VoxletError",
    "WeightsError",
    "__version__",
]
