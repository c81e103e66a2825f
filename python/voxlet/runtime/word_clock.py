"""Word timings, the runtime half: chunk marks + where each chunk's speech lies -> `WordTiming`s.

The FlowLM thread knows where every chunk starts on the stream's 24 kHz timeline (the frames
and pauses before it) and, at the frame where the end-of-speech rule fires, where its speech
ends; `WordClock` places the chunk's marks (`voxlet.text.words`) in that span, on the output
timeline (divided by the speed), and hands out each word once its end is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from voxlet.constants import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME

if TYPE_CHECKING:
    from voxlet.text.words import WordMark


class WordTiming(NamedTuple):
    """A word of the text as written, and when it is said: seconds from the start of the
    stream's audio, after speed and pauses."""

    word: str
    start_s: float
    end_s: float


class WordClock:
    """Turns each chunk's marks into timings, in order; a word said across chunks waits for
    the chunk where it ends."""

    def __init__(self, speed: float = 1.0):
        self._speed = speed
        self._open: tuple[str, float] | None = None  # a word started, its end in a later chunk

    def _seconds(self, sample: float) -> float:
        return sample / SAMPLE_RATE_HZ / self._speed

    def speech_ended(
        self, marks: tuple[WordMark, ...], start: int, last_frame: int
    ) -> list[WordTiming]:
        """The words of a chunk that starts at sample `start` and whose speech ends with its
        frame `last_frame` (the EOS frame, or the last the limit allows)."""
        return self.chunk(marks, start, start + (last_frame + 1) * SAMPLES_PER_FRAME)

    def chunk(self, marks: tuple[WordMark, ...], start: int, end: int) -> list[WordTiming]:
        """The words a chunk completes, its speech from sample `start` to `end` (24 kHz)."""
        out: list[WordTiming] = []
        span = max(0, end - start)
        for mark in marks:
            at = None if mark.start is None else self._seconds(start + mark.start * span)
            until = None if mark.end is None else self._seconds(start + mark.end * span)
            if at is None:  # the end of the word left open
                if self._open is None:
                    continue
                at = self._open[1]
                self._open = None
            if until is None:
                self._open = (mark.word, at)
                continue
            out.append(WordTiming(mark.word, at, max(at, until)))
        return out
