"""Replace a file atomically: write a temporary file in the target's directory, fsync, os.replace.

A reader (or a kill -9, SIGINT or full disk at any moment) sees either the previous complete file or the
new complete one, never a partial one under the target's name. The temporary file is hidden
(.NAME.XXXXXXXX.tmp) and removed on any error.

mkstemp creates its file 0600 (it is meant to be private); the finished file gets the mode an ordinary
open() would give it (0666 minus the umask), so others sharing a model directory can read it.
"""
import os
import tempfile
from pathlib import Path
from typing import Callable, Union


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask can only be read by
    setting it, which briefly affects files that other threads create)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits open(path, "w") would give a new file."""
    return 0o666 & ~current_umask()


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable; a filesystem that cannot fsync a directory is left as is."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write(target: Union[str, Path], write: Callable[[str], object]) -> Path:
    """write(tmp_path) writes the content; then it is fsynced and os.replace()d over target."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt too: no temporary file outlives the write
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(target.parent)
    return target


__all__ = ["atomic_write", "fsync_directory", "new_file_mode", "current_umask"]
