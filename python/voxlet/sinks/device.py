"""Speakers: a sounddevice (PortAudio) output stream fed straight from the Rust ring.

The audio callback only pops from the ring into the device buffer (no model work, no locks);
missing audio is played as silence and counted as an underrun by the ring. Playback starts once
`prebuffer_ms` of audio is buffered (at most the ring's capacity). The stream's output rate is
the device's, so the Rust pipeline resamples when the device does not run at 24 kHz.
"""

from __future__ import annotations

import threading
from typing import Any

from voxlet.errors import SinkError


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        raise SinkError(
            f"speaker output needs the sounddevice package and PortAudio ({e}); "
            "install `voxlet[audio]` and your system's PortAudio library (e.g. libportaudio2)"
        ) from e
    return sounddevice


def device_rate_hz(device: int | str | None = None) -> int:
    """The default sample rate of an output device."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "output")
    except (ValueError, sd.PortAudioError) as e:
        if device is None:
            raise SinkError(
                "--play: no audio output device here (no sound card or sound server); "
                "write a file with -o instead"
            ) from e
        raise SinkError(
            f"--device {device}: not a usable audio output ({e}); "
            "`python -m sounddevice` lists the devices"
        ) from e
    return int(info["default_samplerate"])


class DevicePlayer:
    """Plays a `Stream` (anything with `.pipeline`, `.options` and `.wait_for_audio`)."""

    def __init__(self, stream: Any, device: int | str | None = None, prebuffer_ms: float = 80.0):
        self._sd = _sounddevice()
        rate = stream.options.output_rate_hz
        capacity = stream.pipeline.capacity_frames
        self._prebuffer = min(max(1, round(prebuffer_ms * rate / 1000)), capacity)
        self._stream = stream
        self._pipeline = stream.pipeline
        self._done = threading.Event()
        self._device = device
        self._output: Any = None
        self._popped = 0  # samples handed to the device

    @property
    def position_s(self) -> float:
        """Seconds of audio played: handed to the device, less what its buffer still holds."""
        latency = float(self._output.latency) if self._output is not None else 0.0
        return max(0.0, self._popped / self._stream.options.output_rate_hz - latency)

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        out = outdata[:, 0]
        n = self._pipeline.pop_into(out)
        self._popped += n
        if n < frames:
            out[n:] = 0.0
            if self._pipeline.is_finished:
                raise self._sd.CallbackStop

    def start(self) -> None:
        self._stream.wait_for_audio(self._prebuffer)
        self._stream.mark_first_audio()
        try:
            self._output = self._sd.OutputStream(
                samplerate=self._stream.options.output_rate_hz,
                channels=1,
                dtype="float32",
                device=self._device,
                callback=self._callback,
                finished_callback=self._done.set,
            )
            self._output.start()
        except (self._sd.PortAudioError, ValueError) as e:
            self._stream.stop()
            raise SinkError(f"cannot open audio output: {e}") from e

    def stop(self) -> None:
        if self._output is not None:
            self._output.abort()
            self._output.close()
        self._done.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        if not self._done.wait(timeout_s):
            return False
        if self._output is not None:
            self._output.close()
        return True

    @property
    def underruns(self) -> int:
        return int(self._pipeline.underruns)
