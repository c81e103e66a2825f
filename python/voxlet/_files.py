"""Where an output file really goes, checked before any work, and the temporary file that
stands in for a regular one until it is complete.

- A symlink is written through: its final target is the file written; the link stays.
- A regular file, or a new path in an existing folder, is `Replaced`: written to a temporary
  file of its own in the same folder (created exclusively, so concurrent runs never share one),
  given the target's permissions (or the umask's for a new file), then renamed over the target.
- Anything else that exists (a FIFO, a character device) is `Streamed` to in place: opened for
  writing, never truncated, never replaced.
- A directory, an empty path, a missing folder or a file this user may not write is refused
  with an OSError naming the path.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Replaced:
    target: Path
    temporary: Path
    mode: int  # the permissions the target gets

    def commit(self) -> None:
        """Gives the complete temporary file its mode (a writer may have replaced the file
        mkstemp made: safetensors does) and renames it over the target."""
        os.chmod(self.temporary, self.mode)
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Streamed:
    target: Path


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def plan_output(path: str | os.PathLike[str], what: str = "") -> Replaced | Streamed:
    """Decides how `path` is written (see the module's documentation); raises OSError (with
    the path, after `what` where given, and the problem in its message) where it cannot be."""
    if not str(path):
        raise OSError(f"{what or 'output'}: empty path")
    given = f"{what} {path}" if what else str(path)
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"cannot write {given}: it is a directory")
    if st is not None and not os.access(target, os.W_OK):
        raise PermissionError(f"cannot write {given}: permission denied")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return Streamed(target)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {given}: folder {folder} does not exist")
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".partial")
    except OSError as e:
        raise OSError(f"cannot write {given}: {e.strerror or e} (in {folder})") from e
    os.close(fd)
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    os.chmod(name, mode)
    return Replaced(target, Path(name), mode)
