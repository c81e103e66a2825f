"""What a server allows: sessions, queue, sizes, time limits, the API key. Checked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxlet.errors import ConfigError

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Args:
    max_sessions: streams generating at once; more wait in the queue.
    max_waiting: requests that may wait for a session; past it, "busy" (HTTP 429) at once.
    queue_wait_s: the longest a request waits for a session before "busy".
    api_key: when set, every request must send `Authorization: Bearer <api_key>`.
    voices_dir: a folder whose `NAME.safetensors` files are offered as voice NAME.
    max_input_chars: the longest `input` (and WebSocket text in all) accepted.
    max_body_bytes: the largest request body read.
    idle_timeout_s: a WebSocket that sends nothing for this long is closed.
    """

    max_sessions: int = 4
    max_waiting: int = 16
    queue_wait_s: float = 10.0
    api_key: str | None = None
    voices_dir: Path | None = None
    max_input_chars: int = MAX_INPUT_CHARS
    max_body_bytes: int = 64 * 1024
    idle_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ConfigError(f"max_sessions: must be >= 1, got {self.max_sessions}")
        if self.max_waiting < 0:
            raise ConfigError(f"max_waiting: must be >= 0, got {self.max_waiting}")
        if not self.queue_wait_s >= 0 or not self.idle_timeout_s > 0:
            raise ConfigError("queue_wait_s must be >= 0 and idle_timeout_s > 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("api_key: must not be empty")
        if self.voices_dir is not None and not Path(self.voices_dir).is_dir():
            raise ConfigError(f"--voices {self.voices_dir}: not a folder")
        if self.max_input_chars < 1 or self.max_body_bytes < 1024:
            raise ConfigError("max_input_chars must be >= 1 and max_body_bytes >= 1024")
