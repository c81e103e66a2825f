"""The one module that touches the network: `hf://` and `http(s)://` locations -> local files.

Locations look like `hf://owner/repo/path/in/repo@revision` (revisions are pinned commits). Files
go to the standard Hugging Face cache (or VOXLET_CACHE_DIR); a file already there is used without
the network. Offline (VOXLET_OFFLINE=1 or HF_HUB_OFFLINE=1, or no connection), a missing file
raises `DownloadError` saying exactly what to download and how to point voxlet at it.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from voxlet.config import Environment
from voxlet.errors import DownloadError

log = logging.getLogger(__name__)

# sha256 of official files, checked after download when known (keyed by hf:// location).
KNOWN_SHA256: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str | None

    @staticmethod
    def parse(location: str) -> HubFile:
        body = location.removeprefix("hf://")
        body, _, revision = body.partition("@")
        parts = body.split("/")
        if len(parts) < 3:
            raise DownloadError(f"bad hub location {location!r}: expected hf://owner/repo/path")
        return HubFile("/".join(parts[:2]), "/".join(parts[2:]), revision or None)

    def cli_command(self) -> str:
        rev = f" --revision {self.revision}" if self.revision else ""
        return f"huggingface-cli download {self.repo_id} {self.filename}{rev}"


def is_remote(location: str) -> bool:
    return location.startswith(("hf://", "http://", "https://"))


def fetch(location: str, *, what: str, flag: str, env_var: str | None = None) -> Path:
    """Returns a local path for `location`, downloading it if needed.

    Args:
        location: a local path, `hf://...@rev` or `http(s)://...`.
        what: what the file is, for messages ("model weights", "tokenizer", "voice").
        flag: the CLI flag that takes a local file instead (named in the offline error).
        env_var: the environment variable that does the same, if any.
    """
    if not is_remote(location):
        path = Path(location).expanduser()
        if path.is_dir():
            raise DownloadError(f"{what} {path}: is a directory, not a file")
        if not path.is_file():
            raise DownloadError(f"{what} file not found: {path}")
        return path
    environment = Environment.read()
    try:
        if location.startswith("hf://"):
            path = _fetch_hub(HubFile.parse(location), environment)
        else:
            path = _fetch_url(location, environment)
    except DownloadError as e:
        raise DownloadError(_offline_advice(location, what, flag, env_var, str(e))) from e
    expected = KNOWN_SHA256.get(location)
    if expected is not None and sha256_file(path) != expected:
        raise DownloadError(f"{what} at {path} fails its checksum; delete it and download again")
    return path


def _offline_advice(location: str, what: str, flag: str, env_var: str | None, reason: str) -> str:
    how = f"pass {flag} PATH" + (f" or set {env_var}=PATH" if env_var else "")
    if location.startswith("hf://"):
        hub = HubFile.parse(location)
        get = f"run `{hub.cli_command()}` on a machine with internet access"
    else:
        get = f"download {location}"
    return f"cannot get {what} from {location}: {reason}. To use voxlet offline, {get}, then {how}."


@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP connect to the hub, so an offline machine fails in seconds, not minutes of
    retries. Honours HF_ENDPOINT."""
    import socket
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _fetch_hub(hub: HubFile, environment: Environment) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub.utils import HfHubHTTPError
    except ImportError as e:
        raise DownloadError("huggingface_hub is not installed (`pip install voxlet[hub]`)") from e
    reachable = not environment.offline and _hub_reachable()
    try:
        return Path(
            huggingface_hub.hf_hub_download(
                hub.repo_id,
                hub.filename,
                revision=hub.revision,
                local_files_only=not reachable,
                cache_dir=environment.cache_dir,
            )
        )
    except (HfHubHTTPError, OSError, ValueError) as e:
        kind = type(e).__name__
        if environment.offline:
            raise DownloadError("not in the local cache and offline mode is on") from e
        if not reachable:
            raise DownloadError(
                "not in the local cache, and the Hugging Face hub cannot be "
                "reached (no network connection)"
            ) from e
        raise DownloadError(f"download failed ({kind}: {str(e).splitlines()[0]})") from e


def _fetch_url(url: str, environment: Environment) -> Path:
    import hashlib  # here, not at import: ssl and http load with urllib, and most runs never fetch
    import shutil
    import tempfile
    import urllib.request

    cache = Path(environment.cache_dir or Path.home() / ".cache" / "voxlet") / "http"
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:24] / Path(url).name
    if target.is_file():
        return target
    if environment.offline:
        raise DownloadError("not in the local cache and offline mode is on")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
        ):
            shutil.copyfileobj(response, tmp)
        Path(tmp.name).replace(target)
    except OSError as e:
        raise DownloadError(f"download failed: {e}") from e
    return target


def is_cached(location: str) -> bool:
    """True when an hf:// file is already in the local cache (no network)."""
    try:
        import huggingface_hub
    except ImportError:
        return False
    hub_file = HubFile.parse(location)
    environment = Environment.read()
    found = huggingface_hub.try_to_load_from_cache(
        hub_file.repo_id,
        hub_file.filename,
        revision=hub_file.revision,
        cache_dir=environment.cache_dir,
    )
    return isinstance(found, str)


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
