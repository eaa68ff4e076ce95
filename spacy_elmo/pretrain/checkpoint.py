"""Atomic training checkpoints: written to a temporary file in the same directory, fsynced, then
os.replace()d over DIR/checkpoint.pt, so a kill -9 at any moment leaves either the previous complete
checkpoint or the new complete one. Loaded with torch.load(weights_only=True): the checkpoint holds only
tensors and plain Python values (no pickled objects).

A run's checkpoint holds the model, the optimizer (and gradient scaler) state, the training state's counters
and the torch RNG: with the data order a pure function of (corpus, seed, epoch) and each step re-seeded
from (seed, step, rank), that is all a resumed run needs to continue exactly; plus the best dev evaluation
and its weights, so a kill -9 between two checkpoints never leaves best weights of an unknown step."""
import glob
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import torch
from confection import Config

from ..bilm.atomic import atomic_write as _atomic_write
from .config import RESUMABLE_CHANGES, flat, with_defaults
from .distributed import DistContext
from .errors import PretrainError
from .progress import Progress
from .state import TrainingState

if TYPE_CHECKING:
    from .model import LanguageModel
    from .vocab import Vocab

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


def save_run(output: Path, model: "LanguageModel", optimizer: torch.optim.Optimizer, scaler: "torch.amp.GradScaler",
             state: TrainingState, config: Config, vocab: "Vocab", ctx: DistContext, progress: Progress) -> None:
    """Rank 0 writes DIR/checkpoint.pt of the state at state.step; a write that fails keeps the last one."""
    if not ctx.is_main:
        return
    step = state.step
    best_is_now = state.best is not None and state.best["step"] == step
    payload = {
        "format": 1,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "state": state.counters(),
        "history": state.history,
        "extra_metrics": json.loads(json.dumps(state.extra_metrics)),
        "config": config.to_str(),
        "vocab_sha256": vocab.sha256(),  # vocab.txt must not change under a --resume
        # the biLM's options (with --init-from, DIR's: the config has no n_characters), so a resumed run
        # builds the same biLM without reading DIR again
        "bilm_options": model.bilm.options.to_dict(),
        "torch_rng": torch.get_rng_state(),
        # dropout on a GPU draws from the device's generator: exact resume needs its state too
        "cuda_rng": torch.cuda.get_rng_state(ctx.device) if ctx.device.type == "cuda" else None,
        "best": state.best,
        # None: the best weights are "model" above (the best evaluation is this step's), stored once
        "best_model": None if best_is_now else state.best_weights,
    }
    try:
        save_checkpoint(output, payload)
    except OSError as err:
        last = (f"the last complete checkpoint (step {state.last_checkpoint_step}) is kept"
                if state.last_checkpoint_step >= 0 else "no checkpoint had been written yet")
        raise PretrainError(f"Cannot write the checkpoint {checkpoint_path(output)} at step {step}: "
                            f"{err.strerror or err}; {last}. Free some space (or raise the file-size limit, ulimit -f), "
                            "then run the same command with --resume.") from err
    state.wrote_checkpoint = True
    state.last_checkpoint_step = step
    progress.log("checkpoint", step=step)


def restore_run(output: Path, model: "LanguageModel", optimizer: torch.optim.Optimizer, scaler: "torch.amp.GradScaler",
                state: TrainingState, config: Config, vocab: "Vocab", ctx: DistContext, progress: Progress) -> None:
    """--resume: refuse a config or vocabulary that differs from the checkpoint's, then load everything it holds
    and drop the log rows of the steps after it (they are about to be redone)."""
    saved = load_checkpoint(output, map_location=ctx.device)
    old = flat(with_defaults(saved["config"]))
    new = flat(config)
    changed = sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if changed:
        raise PretrainError(
            "--resume with a config that differs from the checkpoint's in: " + ", ".join(changed)
            + f". Only these may change on resume: {', '.join(sorted(RESUMABLE_CHANGES))}."
        )
    if saved.get("vocab_sha256", vocab.sha256()) != vocab.sha256():
        raise PretrainError(
            f"{output / 'vocab.txt'} ({len(vocab):,} tokens) is not the vocabulary the checkpoint was "
            "trained with: it was edited or replaced. Restore it, or start a new run in another --output."
        )
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as err:  # an older checkpoint without the vocabulary's hash: sizes tell
        raise PretrainError(f"{checkpoint_path(output)} does not fit the model built from the config and "
                            f"{output / 'vocab.txt'} (was vocab.txt edited?): {str(err)[:300]}") from err
    optimizer.load_state_dict(saved["optimizer"])  # its saved rate is replaced at every step
    if saved.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(saved["scaler"])
    state.load_counters(saved["state"])
    state.history = list(saved.get("history", []))
    state.extra_metrics.update(saved.get("extra_metrics", {}))
    state.best = saved.get("best")
    if state.best is not None and ctx.is_main:
        weights = saved.get("best_model") or saved["model"]
        state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
    state.last_checkpoint_step = state.step
    # the checkpoint is loaded onto the training device, but generator states are CPU byte tensors
    torch.set_rng_state(saved["torch_rng"].cpu())
    if saved.get("cuda_rng") is not None and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), ctx.device)
    if ctx.is_main and (output / "log.jsonl").is_file():
        keep = []
        for line in (output / "log.jsonl").read_text(encoding="utf8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("step", 0) <= state.step:
                keep.append(line)
        text = "".join(line + "\n" for line in keep)
        atomic_write(output / "log.jsonl", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))
    progress.say(f"Resumed from {checkpoint_path(output)} at step {state.step} "
                 f"(epoch {state.epoch}, batch {state.batch_in_epoch})")


__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_path", "atomic_write", "remove_stale_temporaries",
           "save_run", "restore_run", "CheckpointError", "CHECKPOINT_NAME"]
