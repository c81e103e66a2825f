"""Text that arrives while speaking: fragments -> plans, on the FlowLM thread, as it needs them.

A reader thread ("voxlet-text") takes fragments from the caller's iterable into a bounded queue
as they come. Each time the FlowLM thread needs its next chunk, every fragment received so far
is taken, complete sentences are cut off (`voxlet.text.incremental`), and the first chunk of the
whole-text chunking of those sentences is handed out, together with the sentences it used. So
when the text is there ahead of time the chunks are exactly the whole text's; when the FlowLM
thread is waiting, it starts on the first complete sentence (or, for a long one, clause).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar, cast

from voxlet.errors import TextError
from voxlet.text.incremental import SentenceSplitter
from voxlet.text.markup import PARAGRAPH_BREAK, PARAGRAPH_PAUSE

_POLL_S = 0.05
_QUEUE_FRAGMENTS = 256
_END = object()
_PARAGRAPH_END = re.compile(PARAGRAPH_BREAK.pattern + "$")
Piece = TypeVar("Piece")


class FragmentError(TextError):
    """A fragment that is not a str."""


class _Reader:
    """Reads the caller's fragments on a thread of its own into a bounded queue."""

    def __init__(self, fragments: Iterable[str], stop: threading.Event):
        self._fragments = fragments
        self._stop = stop
        self.queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_FRAGMENTS)
        self.thread = threading.Thread(target=self._run, name="voxlet-text", daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for i, fragment in enumerate(self._fragments):
                if not isinstance(fragment, str):
                    raise FragmentError(
                        f"text fragment {i}: must be a str, got {type(fragment).__name__}"
                    )
                if self._stop.is_set() or not self._put(fragment):
                    return
        except BaseException as e:  # the caller's iterable failed: raised on the FlowLM thread
            self._put(e)
            return
        self._put(_END)


class IncrementalPlanner(Generic[Piece]):
    """Fragments in, final pieces out; no threads, no waiting (the part tests drive)."""

    def __init__(
        self,
        pieces: Callable[[str, str | None], list[Piece]],
        same: Callable[[Piece, Piece], bool],
        window_chars: int,
    ):
        self._context: str | None = None  # the sentence planned last (None: none yet)
        self._pieces = pieces
        self._same = same
        self._window = window_chars
        self._splitter = SentenceSplitter()
        self._ready: list[str] = []  # complete sentences not yet planned
        self._said = False
        self._trail = ""  # whitespace that ended the text planned last

    def feed(self, fragment: str) -> None:
        self._splitter.feed(fragment)

    def close(self) -> None:
        self._splitter.close()

    @property
    def finished(self) -> bool:
        """All text received and planned."""
        return self._splitter.closed and not self._ready and not self._splitter.pending

    def next_pieces(self) -> list[Piece] | None:
        """The pieces that are final with the text received so far (the fewest sentences'
        worth), or None when nothing can be planned before more text comes."""
        self._ready.extend(self._splitter.sentences())
        if not self._ready and not self._splitter.closed:
            clause = self._splitter.take_clause()
            if clause is not None:
                self._ready.append(clause)
        if not self._ready:
            return None
        more = not self._splitter.closed or bool(self._splitter.pending.strip())
        context = self._context
        first = self._ready[0]
        head, used = _first_pieces(
            self._ready,
            lambda text: self._pieces(text, context),
            self._same,
            self._window,
            more,
        )
        # a blank line that came after its sentence was cut: the paragraph pause goes here
        lead = first[: len(first) - len(first.lstrip())]
        if (
            self._said
            and not _PARAGRAPH_END.search(self._trail)
            and _PARAGRAPH_END.search(self._trail + lead)
        ):
            head = [cast(Piece, PARAGRAPH_PAUSE), *head]
        last = self._ready[used - 1]
        self._context = last
        del self._ready[:used]
        self._said = self._said or bool(head)
        self._trail = last[len(last.rstrip()) :]
        return head


def incremental_plans(
    fragments: Iterable[str],
    pieces: Callable[[str, str | None], list[Piece]],
    same: Callable[[Piece, Piece], bool],
    window_chars: int,
    is_speech: Callable[[Piece], bool],
) -> Callable[[threading.Event], Iterator[Piece]]:
    """A plan source for the FlowLM thread: `pieces(text, context)` is the whole-text
    planning of a text (chunks and pauses), `context` the sentence planned just before it
    (None at the start); `same` compares two pieces; at most `window_chars` of complete
    sentences are planned at a time (enough for the first chunk)."""

    def plans(stop: threading.Event) -> Iterator[Piece]:
        reader = _Reader(fragments, stop)
        planner = IncrementalPlanner(pieces, same, window_chars)
        said_anything = False

        def receive(block: bool) -> None:
            while True:
                try:
                    item = reader.queue.get(timeout=_POLL_S) if block else reader.queue.get_nowait()
                except queue.Empty:
                    if block and not stop.is_set():
                        continue
                    return
                block = False
                if item is _END:
                    planner.close()
                elif isinstance(item, BaseException):
                    raise item
                else:
                    planner.feed(item)  # type: ignore[arg-type]

        try:
            while not planner.finished:
                receive(block=False)
                ready = planner.next_pieces()
                if ready is None:
                    if planner.finished or stop.is_set():
                        break
                    receive(block=True)
                    continue
                for piece in ready:
                    said_anything = said_anything or is_speech(piece)
                    yield piece
            if not said_anything and not stop.is_set():
                raise TextError("Text prompt cannot be empty")
        finally:
            reader.thread.join(_POLL_S * 2)

    return plans


def _first_pieces(
    ready: list[str],
    pieces: Callable[[str], list[Piece]],
    same: Callable[[Piece, Piece], bool],
    window_chars: int,
    more_text: bool,
) -> tuple[list[Piece], int]:
    """Plans the fewest leading sentences whose pieces begin the planning of the whole window
    (so they are final): their pieces, and how many sentences they are. `more_text`: text may
    follow the ready sentences."""
    window, size = 0, 0
    while window < len(ready) and (window == 0 or size < window_chars):
        size += len(ready[window])
        window += 1

    def planned(j: int) -> list[Piece]:
        head = _plan(ready[:j], pieces)
        if (j < len(ready) or more_text) and _PARAGRAPH_END.search(ready[j - 1]):
            # planned alone, text drops a paragraph pause at its end; more text follows here
            head = [*head, cast(Piece, PARAGRAPH_PAUSE)]
        return head

    whole = planned(window)
    if window == len(ready) and not more_text:  # all the text is here: its own chunking
        return whole, window
    for j in range(1, window):
        head = planned(j)
        if len(head) <= len(whole) and all(same(a, b) for a, b in zip(head, whole, strict=False)):
            return head, j
    return whole, window


def _plan(sentences: list[str], pieces: Callable[[str], list[Piece]]) -> list[Piece]:
    text = "".join(sentences)
    return pieces(text) if text.strip() else []
