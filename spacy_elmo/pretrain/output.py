"""The output folder of a pretraining run: one writer at a time, and nothing replaced that the user did not
ask to replace.

The lock is an flock on DIR/.pretrain.lock held for the run's life. The OS drops it when the process
ends, however it ends, so a killed run never blocks the next one; the file itself is removed by the run
that holds the lock when it finishes."""
import errno
import os
from pathlib import Path
from typing import Callable, List, Optional, Union

try:
    import fcntl
except ImportError:  # Windows: no flock; the run goes on without the guard
    fcntl = None  # type: ignore[assignment]

from .checkpoint import checkpoint_path
from .errors import PretrainError
from .export import EXPORTED_FILES

LOCK_NAME = ".pretrain.lock"
# Everything a run writes into --output besides its checkpoint: a fresh run replaces none of them unasked.
RUN_OUTPUTS = (*EXPORTED_FILES, "config.cfg", "metrics.json", "log.jsonl", "training_curve.png")


def refuse_to_replace(directory: Union[str, Path], overwrite: bool) -> None:
    """A fresh run (no checkpoint to continue) writes RUN_OUTPUTS. Any of them already there is not this run's:
    published weights placed where README says, or an earlier run's record, so it is replaced only on request."""
    directory = Path(directory)
    existing = [name for name in RUN_OUTPUTS if (directory / name).exists()]
    if existing and not overwrite:
        raise PretrainError(
            f"{directory} already holds {', '.join(existing)} and no checkpoint of a run to resume, so a new run "
            "would replace them. Choose another --output, or pass --overwrite to replace them."
        )


class OutputLock:
    """An exclusive lock on an output folder; acquire() refuses with the holder's process id."""

    def __init__(self, directory: Union[str, Path]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        if fcntl is None or self._fd is not None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise PretrainError(
                    f"{self.directory} is being written by another pretraining run ({self._holder()}): one run "
                    "at a time per --output. Wait for it to finish (or stop it), or choose another --output."
                ) from None
            # The holder before us may have removed the file between our open and our flock: then we hold a
            # lock on a file nobody else can find, and must lock the one that is there now.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            pid = ""
        return f"process {pid}" if pid.isdigit() else "a process that has just started"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()  # while still holding the lock: see acquire()
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class OutputFolder:
    """--output for one run: opened (created, locked, checked) before anything is written into it; on failure
    it is left as the run found it where that can be known."""

    def __init__(self, path: Path, is_main: bool) -> None:
        self.path, self.is_main = path, is_main
        self.lock = OutputLock(path)
        self._created = False  # this run made the folder: an empty one is removed when the run fails
        # A fresh run's outputs that were not there before it (None on --resume): a run that fails before its
        # first checkpoint removes them, so the corrected command is not refused for them.
        self._new_outputs: Optional[List[str]] = None

    def open(self, resume: bool, overwrite: bool, say: Callable[[str], None]) -> bool:
        """Create and lock the folder, refuse what must not be replaced; whether this run resumes a checkpoint."""
        if self.path.exists() and not self.path.is_dir():
            raise PretrainError(f"--output {self.path} is a file: give a directory (a new one, or an earlier run's "
                                "to --resume).")
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if self.is_main:
                self.lock.acquire()  # before anything in the folder is read or written
        except OSError as err:
            raise PretrainError(f"Cannot write into --output {self.path}: {err.strerror or err}. Choose a folder "
                                "you can write to.") from err
        has_checkpoint = checkpoint_path(self.path).is_file()
        if has_checkpoint and not resume:
            raise PretrainError(f"{self.path} already holds a checkpoint: pass --resume to continue it, or choose another --output.")
        resuming = resume and has_checkpoint
        if not resuming:
            refuse_to_replace(self.path, overwrite)
            self._new_outputs = [name for name in RUN_OUTPUTS if not (self.path / name).exists()]
        if resume and not has_checkpoint:
            say(f"--resume: no checkpoint in {self.path} yet; starting from scratch.")
        return resuming

    def remove_unfinished(self, wrote_checkpoint: bool) -> None:
        """After a failure: a fresh run that wrote no checkpoint has nothing to resume, so the files it wrote go
        (and the folder, if it made it and it is empty)."""
        if not self.is_main or not self.lock.held:
            return  # nothing written (or another run's folder)
        if self._new_outputs is not None and not wrote_checkpoint:
            for name in self._new_outputs:
                (self.path / name).unlink(missing_ok=True)
        if self._created:
            self.lock.release()
            try:
                self.path.rmdir()  # only if empty
            except OSError:
                pass

    def release(self) -> None:
        self.lock.release()


__all__ = ["OutputFolder", "OutputLock", "LOCK_NAME", "RUN_OUTPUTS", "refuse_to_replace"]
