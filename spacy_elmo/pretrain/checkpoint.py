"""Atomic training checkpoints: written to a temporary file in the same directory, fsynced, then
os.replace()d over DIR/checkpoint.pt, so a kill -9 at any moment leaves either the previous complete
checkpoint or the new complete one. Loaded with torch.load(weights_only=True): the checkpoint holds only
tensors and plain Python values (no pickled objects)."""
import glob
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..bilm.atomic import atomic_write as _atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    pass


def atomic_write(target: Path, write) -> Path:
    """write(tmp_path) then fsync and os.replace(tmp, target); the temporary file never survives an error.
    The one implementation is spacy_elmo.bilm.atomic's; this one also creates the directory."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _atomic_write(target, write)


def save_checkpoint(directory: Union[str, Path], state: Dict[str, Any]) -> Path:
    """Raises OSError (naming the checkpoint) when the disk is full or a file-size limit is reached."""
    path = Path(directory) / CHECKPOINT_NAME

    def write(tmp: str) -> None:
        # Through a Python file: torch's own writer reports a failed write as a RuntimeError without its cause.
        with open(tmp, "wb") as fout:
            try:
                torch.save(state, fout)
            except RuntimeError as err:
                cause = err.__context__
                if isinstance(cause, OSError):
                    raise OSError(cause.errno, cause.strerror, str(path)) from err
                raise

    return atomic_write(path, write)


def checkpoint_path(directory: Union[str, Path]) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def load_checkpoint(directory: Union[str, Path], map_location: Optional[torch.device] = None,
                    mmap: bool = False) -> Dict[str, Any]:
    """mmap=True maps the tensors instead of reading them: cheap when only the plain values are wanted."""
    path = checkpoint_path(directory)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint to resume from: {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises a variety of errors for damaged files
        raise CheckpointError(f"Checkpoint {path} cannot be read ({err}).") from err


# Files a run replaces atomically; only their temporaries are removed, never another file that the
# user happens to keep in --output under a similar name.
RUN_FILES = (CHECKPOINT_NAME, "metrics.json", "log.jsonl", "options.json", "weights.hdf5", "vocab.txt")


def remove_stale_temporaries(directory: Union[str, Path]) -> int:
    """Temporary files left by a process killed mid-write; they are never valid checkpoints."""
    n = 0
    stale = [tmp for name in RUN_FILES for tmp in Path(directory).glob(f".{glob.escape(name)}.*.tmp")]
    for tmp in stale:
        try:
            tmp.unlink()
            n += 1
        except OSError:
            pass
    return n


__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_path", "atomic_write", "remove_stale_temporaries",
           "CheckpointError", "CHECKPOINT_NAME"]
