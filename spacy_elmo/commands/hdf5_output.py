"""Write an HDF5 file whole or not at all, and never leave a temporary file behind when it can be helped.

The file is written to a hidden temporary next to the target, `.NAME.HOST-PID-XXXXXX.tmp`, and renamed over
the target when complete. HDF5 reports a failed write (full disk, `ulimit -f`) from deep inside its caches,
often only when an object is freed, as thousands of ignored tracebacks and then a crash; so HDF5 writes
through DiskFile, which records the first OSError and discards later writes, and the caller raises it once.
While the file is written, SIGTERM and SIGHUP raise SystemExit (and SIGINT KeyboardInterrupt) so the
temporary is removed; a signal that arrives while HDF5 is inside DiskFile's I/O is raised at the next
check() instead, never inside HDF5. A temporary left by a killed run (its PID no longer running on this
host) is removed by the next run into the same directory.
"""
import io
import os
import re
import secrets
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, List, Optional

import h5py

from ..bilm.atomic import fsync_directory, new_file_mode


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "localhost"


def temp_path(target: Path) -> Path:
    """A new temporary name for `target` that says which process on which host owns it."""
    return target.parent / f".{target.name}.{_host()}-{os.getpid()}-{secrets.token_hex(3)}.tmp"


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def remove_stale_temp_files(target: Path) -> List[Path]:
    """Remove the temporaries for `target` whose process on this host has died (a kill -9, a power cut);
    returns them. Files of other hosts (a shared file system) or of live processes are left alone."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)-[0-9a-f]{6}\.tmp")
    removed: List[Path] = []
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX (on Windows it signals it)
        return removed
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or match["host"] != _host() or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _pid_running(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


class DiskFile(io.RawIOBase):
    """The file object h5py writes through: the first failed write is kept (check() raises it) and later
    writes are dropped, so HDF5 never sees an error it cannot report cleanly."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.raw = io.FileIO(path, "x+")  # O_EXCL: never an existing file
        self.error: Optional[OSError] = None
        self.busy = False  # inside an I/O call made by HDF5
        self.pending_signal: Optional[int] = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.busy = True
        try:
            return self.raw.readinto(buffer) or 0
        finally:
            self.busy = False

    def write(self, data: Any) -> int:
        self.busy = True
        try:
            view = memoryview(data).cast("B")
            if self.error is None:
                try:
                    done = 0
                    while done < len(view):
                        done += self.raw.write(view[done:]) or 0
                except OSError as err:
                    self.error = err
            return len(view)
        finally:
            self.busy = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.busy = True
        try:
            return self.raw.seek(offset, whence)
        finally:
            self.busy = False

    def tell(self) -> int:
        return self.raw.tell()

    def truncate(self, size: Optional[int] = None) -> int:
        self.busy = True
        try:
            if self.error is None:
                try:
                    return self.raw.truncate(size)
                except OSError as err:
                    self.error = err
            return self.raw.tell() if size is None else size
        finally:
            self.busy = False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.raw.close()
        super().close()

    def check(self) -> None:
        """Raise the first failed write, or a signal that arrived during HDF5's I/O."""
        if self.pending_signal is not None:
            _raise_for(self.pending_signal)
        if self.error is not None:
            raise self.error


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextmanager
def _signals_raise(disk: DiskFile) -> Iterator[None]:
    """SIGTERM, SIGHUP (a closed terminal) and SIGINT raise while the block runs (deferred to disk.check()
    during HDF5's I/O)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        if disk.busy:
            disk.pending_signal = signum
        else:
            _raise_for(signum)

    signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def write_hdf5_atomically(target: Path, write: Callable[[h5py.File, DiskFile], None]) -> Path:
    """write(hdf5_file, disk) fills the file; it is then fsynced and renamed over `target`. Any error,
    KeyboardInterrupt or SIGTERM removes the temporary and leaves an earlier `target` as it was."""
    target = Path(target)
    tmp = temp_path(target)
    disk = DiskFile(tmp)
    try:
        with _signals_raise(disk):
            try:
                with h5py.File(disk, "w") as fout:
                    write(fout, disk)
                disk.check()  # closing writes the metadata last
                os.fsync(disk.raw.fileno())
            finally:
                disk.close()
            os.chmod(tmp, new_file_mode())  # the mode open() would give, not the 0600 of a private temp
            os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_directory(target.parent)
    return target


__all__ = ["DiskFile", "temp_path", "remove_stale_temp_files", "write_hdf5_atomically"]
