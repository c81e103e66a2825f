"""Sinks: where PCM frames go (WAV file, stdout). Imports only `audio` and `errors`."""

from voxlet.sinks.base import Sink
from voxlet.sinks.stdout import StdoutSink
from voxlet.sinks.wav import WavFileSink

__all__ = ["Sink", "StdoutSink", "WavFileSink"]
