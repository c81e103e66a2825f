"""voxlet: CPU-first streaming text-to-speech for the Pocket TTS model family."""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from voxlet.tts import TTS, Voice

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`TTS` and `Voice` load PyTorch: only when first used, so `import voxlet` (and the
    command line's start, where Ctrl-C must stay quiet) is quick."""
    if name in ("TTS", "Voice"):
        from voxlet import tts

        return getattr(tts, name)
    raise AttributeError(f"module 'voxlet' has no attribute {name!r}")


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
