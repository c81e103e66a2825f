"""Runtime: FlowLM on one thread, Mimi on another, a bounded queue between, a Rust ring out."""

from voxlet.runtime.stream import Stream, StreamOptions

__all__ = ["Stream", "StreamOptions"]
