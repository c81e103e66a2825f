"""voxlet: CPU-first streaming text-to-speech for the Pocket TTS model family."""

import os as _os
import sys as _sys

# Idle OpenMP workers of one stage spin on the core the other stage needs (measured: the first
# frame's two-core relay then loses its gain). Set before torch loads, unless the user chose.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
