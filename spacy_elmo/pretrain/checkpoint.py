"""Atomic training checkpoints: written to a temporary file in the same directory, fsynced, then
os.replace()d over DIR/checkpoint.pt, so a kill -9 at any moment leaves either the previous complete
checkpoint or the new complete one. Loaded with torch.load(weights_only=True): the checkpoint holds only
tensors and plain Python values (no pickled objects)."""
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    pass


def atomic_write(target: Path, write) -> Path:
    """write(tmp_path) then fsync and os.replace(tmp, target); the temporary file never survives an error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(directory: Union[str, Path], state: Dict[str, Any]) -> Path:
    return atomic_write(Path(directory) / CHECKPOINT_NAME, lambda tmp: torch.save(state, tmp))


def checkpoint_path(directory: Union[str, Path]) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def load_checkpoint(directory: Union[str, Path], map_location: Optional[torch.device] = None) -> Dict[str, Any]:
    path = checkpoint_path(directory)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint to resume from: {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # torch raises a variety of errors for damaged files
        raise CheckpointError(f"Checkpoint {path} cannot be read ({err}).") from err


def remove_stale_temporaries(directory: Union[str, Path]) -> int:
    """Temporary files left by a process killed mid-write; they are never valid checkpoints."""
    n = 0
    for tmp in Path(directory).glob(".*.tmp"):
        try:
            tmp.unlink()
            n += 1
        except OSError:
            pass
    return n


__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_path", "atomic_write", "remove_stale_temporaries",
           "CheckpointError", "CHECKPOINT_NAME"]
