"""voxlet's exception hierarchy. Every error a user can cause is a VoxletError."""


class VoxletError(Exception):
    """Base class of every voxlet error."""


class ConfigError(VoxletError, ValueError):
    """A model config file or value is invalid; the message names the dotted key."""


class WeightsError(VoxletError):
    """A checkpoint is missing, corrupt, or does not match the model (key and shapes named)."""


class DownloadError(VoxletError):
    """A file could not be fetched (offline, gated, or failed checksum); says what to do."""


class TextError(VoxletError, ValueError):
    """Text that cannot be spoken (empty, or unencodable)."""


class VoiceError(VoxletError, ValueError):
    """An unknown voice, an unreadable voice file, or cloning without an encoder."""


class StreamError(VoxletError):
    """A pipeline stage failed; `.stage` names it and `__cause__` holds the original error."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage


class SinkError(VoxletError):
    """An audio sink (file, stdout, device) could not be written."""
