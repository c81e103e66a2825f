"""voxlet: CPU-first streaming text-to-speech for the Pocket TTS model family."""

from voxlet._process import tune_process
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

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (14 ms at start-up)
if TYPE_CHECKING:
    from voxlet.options import GenerationOptions
    from voxlet.runtime.word_clock import WordTiming
    from voxlet.tts import TTS, Voice

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`TTS` and `Voice` load PyTorch, `GenerationOptions` dataclasses, `WordTiming` typing:
    only when first used, so `import voxlet` (and the command line's start, where Ctrl-C must
    stay quiet) is quick."""
    if name == "GenerationOptions":
        from voxlet.options import GenerationOptions

        return GenerationOptions
    if name == "WordTiming":
        from voxlet.runtime.word_clock import WordTiming

        return WordTiming
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
    "WordTiming",
    "__version__",
    "tune_process",
]
