"""The pretraining loop: biLM + shared LM head, stateless per-sentence training, checkpoints, evaluation,
export. Entry point: pretrain(config, output_dir, gpu_id=-1, resume=False).

A run reads top to bottom: settle the plan (every check that can be made before the first write, the
settings resolved once), build the data and the model, then step until a limit is reached, and finish
(final evaluation, checkpoint, export of the best or last weights, metrics). Each role lives in its own
module: model, init_from, output (the folder and its lock), checkpoint, progress, evaluation, export.

Determinism and resumption: the data order is a pure function of (corpus, seed, epoch) and the position
in it is (epoch, batches consumed); the torch RNG (dropout, sampled-softmax negatives) is re-seeded at
the start of every step from (seed, step, rank). So a checkpoint needs only the model, the optimizer
(and gradient scaler) state and those counters to continue exactly where it stopped."""
import dataclasses
import json
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

from ..bilm.chars import batch_to_char_ids
from ..bilm.options import BiLMOptions
from .checkpoint import atomic_write, checkpoint_path, remove_stale_temporaries, restore_run, save_run
from .config import Config, Settings, TrainingSettings
from .data import Batch, DevSet, check_cutoffs, check_inputs, load_dev_set, make_vocab, training_batches
from .distributed import DistContext, setup, teardown
from .errors import NonFiniteLossError, PretrainError, PretrainInterrupted
from .evaluation import record_evaluation
from .export import export_run
from .init_from import adopt_architecture, check_init_from, init_options_on_resume, load_init_from
from .model import (LanguageModel, architecture_line, bilm_options, build_model, make_optimizer, set_bilm_trainable,
                    step_seed, trained_module)
from .numerics import autocast, deterministic_algorithms, resolve_precision, training_precision
from .output import OutputFolder
from .progress import Progress, format_time
from .schedule import learning_rate
from .state import TrainingState
from .vocab import Vocab

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Plan:
    """What a run will do, settled before it writes anything and never changed after."""
    config: Config  # written to config.cfg and compared on --resume: [model] from --init-from, precision as given
    settings: Settings  # what runs: the config's, with training.precision resolved for the device
    resuming: bool
    init_options: Optional[BiLMOptions]  # --init-from DIR's options (or the checkpoint's copy on --resume)
    vocab_file: Optional[Vocab]  # paths.vocab, read while checking


class StopSignals:
    """Ctrl+C or `kill` (SIGTERM, as schedulers send) while steps run: finish the step, save a checkpoint and
    stop, so the work since the last periodic checkpoint is not lost. A second signal, or one outside the
    training loop (nothing new to save), stops at once as usual."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.in_loop = False
        self.received: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.in_loop and self.received is None:
            self.received = signum
            self.say(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                     "(send it again to stop at once, losing the steps since the last checkpoint).")
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set from the main thread
            self._previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)


def pretrain(config: Config, output_dir: PathLike, gpu_id: int = -1, resume: bool = False,
             stdout: Callable[[str], None] = print, overwrite: bool = False) -> Dict[str, Any]:
    """Train a biLM as configured and export it to output_dir. Returns the final metrics (rank 0).
    An output_dir holding any file a run writes but no checkpoint is refused unless overwrite=True."""
    ctx = setup(gpu_id)
    progress = Progress(Path(output_dir), ctx.is_main, stdout)
    folder = OutputFolder(Path(output_dir), ctx.is_main)
    state = TrainingState()
    try:
        with StopSignals(progress.say) as signals:
            try:
                plan = make_plan(config, folder, resume, overwrite, ctx, progress)
                # CPU only: on CUDA, deterministic cuBLAS needs CUBLAS_WORKSPACE_CONFIG set before the process starts
                with deterministic_algorithms(plan.settings.training.deterministic and ctx.device.type == "cpu"):
                    result = train(plan, folder, state, ctx, progress, signals)
            except BaseException:
                folder.remove_unfinished(state.wrote_checkpoint)
                raise
        # Every rank leaves together: rank 0 still exports when the others are done, and a rank that tore down its
        # gloo group meanwhile once aborted at exit. Not on errors: a failed rank never arrives.
        ctx.barrier()
        return result
    finally:
        folder.release()
        teardown(ctx)


def make_plan(config: Config, folder: OutputFolder, resume: bool, overwrite: bool, ctx: DistContext,
              progress: Progress) -> Plan:
    """Every check that needs no corpus pass, then the settings resolved once: --init-from's architecture in
    [model], training.precision as it runs on this device."""
    given = Settings.from_config(config)
    if given.training.threads > 0:
        torch.set_num_threads(given.training.threads)
    vocab_file = check_inputs(given, folder.path)
    init_options = check_init_from(given, folder.path, resume)
    resuming = folder.open(resume, overwrite, progress.say)
    if resuming:
        init_options = init_options_on_resume(given, folder.path, progress.say) or init_options
    if init_options is not None:
        config = adopt_architecture(config, init_options, str(given.paths.init_from), None if resuming else progress.say)
    adopted = Settings.from_config(config)
    precision, note = resolve_precision(adopted.training.precision, ctx.device)
    if note:
        progress.say(note)
    settings = dataclasses.replace(adopted, training=dataclasses.replace(adopted.training, precision=precision))
    return Plan(config, settings, resuming, init_options, vocab_file)


def train(plan: Plan, folder: OutputFolder, state: TrainingState, ctx: DistContext, progress: Progress,
          signals: StopSignals) -> Dict[str, Any]:
    """The run: the data and the model, the first writes, the steps until a limit is reached, the end."""
    settings, T = plan.settings, plan.settings.training
    source = f"--init-from {settings.paths.init_from}" if plan.init_options else "[model]"
    progress.say(architecture_line(plan.init_options or settings.model.bilm_options(), source))
    state.learning_rate = T.learning_rate
    state.extra_metrics["precision"] = T.precision

    # The data and the model: still nothing written into the output folder.
    vocab = make_vocab(settings, folder.path, plan.resuming, plan.vocab_file, state, progress)
    check_cutoffs(settings, vocab)
    dev = load_dev_set(settings, progress)
    if not plan.resuming and dev is not None and vocab.counts is not None:
        state.extra_metrics["unigram_perplexity"] = vocab.unigram_perplexity(dev.sentences)
    model, trainer, optimizer, scaler = build(plan, folder, state, vocab, ctx, progress)
    begin_writing(plan, folder, vocab, ctx, progress)
    if not plan.resuming and dev is not None and T.eval_every > 0 and T.eval_at_start:
        record_evaluation(model, dev, vocab, ctx, state, progress)

    def save() -> None:
        save_run(folder.path, model, optimizer, scaler, state, plan.config, vocab, ctx, progress)

    progress.start_clock(state)
    batches = training_batches(settings, state, ctx, progress)
    stop = stop_reason(T, state, ctx)  # e.g. --resume of a finished run
    model.train()
    signals.in_loop = True  # from here a SIGINT/SIGTERM saves a checkpoint before stopping
    while stop is None:
        item = next(batches)
        if item is None:  # an epoch ended
            stop = stop_reason(T, state, ctx)
            continue
        index, batch = item
        grad_norm = train_step(model, trainer, optimizer, scaler, plan, state, vocab, index, batch, ctx, progress,
                               folder.path)
        state.elapsed = progress.elapsed()
        stop = stop_reason(T, state, ctx)
        if T.log_every and state.step % T.log_every == 0:
            progress.step_line(state, settings, grad_norm)
        if ctx.broadcast_flag(signals.received is not None):
            save()
            name = signal.Signals(signals.received).name if signals.received else "a signal on another process"
            raise PretrainInterrupted(f"Stopped by {name} after step {state.step}; checkpoint saved in "
                                      f"{checkpoint_path(folder.path)}. Run the same command with --resume to continue.")
        # the periodic evaluation and checkpoint (at the last step finish() does both)
        if stop is None and dev is not None and T.eval_every and state.step % T.eval_every == 0:
            record_evaluation(model, dev, vocab, ctx, state, progress)
        if stop is None and T.checkpoint_every and state.step % T.checkpoint_every == 0:
            save()
    signals.in_loop = False
    return finish(plan, folder, model, save, state, vocab, dev, ctx, progress, stop)


def build(plan: Plan, folder: OutputFolder, state: TrainingState, vocab: Vocab, ctx: DistContext,
          progress: Progress) -> Tuple[LanguageModel, nn.Module, torch.optim.Optimizer, "torch.amp.GradScaler"]:
    """The model (seeded), its optimizer and gradient scaler, restored from the checkpoint on --resume; plus the
    module that trains (the model itself, or its DistributedDataParallel wrapper)."""
    settings = plan.settings
    options = bilm_options(settings, plan.init_options, len(vocab))
    model = build_model(settings, options, len(vocab), ctx.device)
    if plan.init_options is not None and not plan.resuming:
        load_init_from(model, settings, vocab, progress)
    optimizer = make_optimizer(settings.training, model.parameters())
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=settings.training.precision == "fp16")
    if plan.resuming:
        restore_run(folder.path, model, optimizer, scaler, state, plan.config, vocab, ctx, progress)
    n_params = sum(p.numel() for p in model.parameters())
    progress.say(f"Model: biLM {options.lstm_dim}x{options.n_layers} proj {options.projection_dim}, "
                 f"{options.n_filters} char filters, {options.n_highway} highway; {settings.softmax.type} softmax over "
                 f"{len(vocab):,} tokens; {n_params / 1e6:.2f}M parameters; device {ctx.device}"
                 + (f"; {ctx.world_size} processes" if ctx.distributed else ""))
    progress.log("start", step=state.step, resumed=plan.resuming, world_size=ctx.world_size, parameters=n_params,
                 vocab_size=len(vocab))
    return model, trained_module(model, settings, ctx.device, ctx.distributed), optimizer, scaler


def begin_writing(plan: Plan, folder: OutputFolder, vocab: Vocab, ctx: DistContext, progress: Progress) -> None:
    """Every check has passed (settings, corpus, vocabulary, model, checkpoint): the run's first writes."""
    if ctx.is_main:
        remove_stale_temporaries(folder.path)
        text = plan.config.to_str()  # on --resume too: the checkpoint has accepted this config
        atomic_write(folder.path / "config.cfg", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))
        if not plan.resuming:
            vocab.to_file(folder.path / "vocab.txt")
    progress.open_log(fresh=not plan.resuming)


def train_step(model: LanguageModel, trainer: nn.Module, optimizer: torch.optim.Optimizer,
               scaler: "torch.amp.GradScaler", plan: Plan, state: TrainingState, vocab: Vocab, index: int,
               batch: Batch, ctx: DistContext, progress: Progress, output: Path) -> float:
    """One optimizer step on this process's batch (gradients averaged over processes by DDP); the state then
    counts the step, the batch and the tokens of all processes. Returns the gradient norm."""
    T, step = plan.settings.training, state.step
    if (step < T.freeze_bilm_steps) != state.bilm_frozen:
        freeze_bilm(model, state, T, progress, frozen=not state.bilm_frozen)
    torch.manual_seed(step_seed(T.seed, step, ctx.rank))
    char_ids = torch.from_numpy(batch_to_char_ids(batch, plan.settings.model.max_characters_per_token)).to(ctx.device)
    targets = vocab.target_ids(batch).to(ctx.device)
    with autocast(T.precision, ctx.device):
        loss, _, _ = trainer(char_ids, targets)
    optimizer.zero_grad(set_to_none=True)
    # the configured rate and schedule win over the optimizer state's (both may change on --resume)
    state.learning_rate = learning_rate(T, step, state.tokens)
    for group in optimizer.param_groups:
        group["lr"] = state.learning_rate
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = nn.utils.clip_grad_norm_(params, T.grad_clip) if T.grad_clip > 0 else torch.zeros(())
    stats = torch.tensor([float(loss.detach()), float(sum(len(x) for x in batch)),
                          0.0 if (torch.isfinite(loss) and torch.isfinite(grad_norm)) else 1.0],
                         dtype=torch.float64, device=ctx.device)
    ctx.all_reduce_sum(stats)
    if stats[2] > 0 and not scaler.is_enabled():
        diverged(state, output, progress, f"loss {float(loss.detach())} / gradient norm {float(grad_norm)} is not finite")
    try:
        scaler.step(optimizer)
    except RuntimeError as err:
        # Adam divides the rate by its bias correction: a rate near float32's limit overflows inside its step
        if "overflow" not in str(err):
            raise
        diverged(state, output, progress, f"the optimizer's update overflows ({err}) at learning rate "
                                          f"{state.learning_rate:g}")
    scaler.update()
    state.step = step + 1
    state.batch_in_epoch = index + 1
    state.tokens += int(stats[1])
    progress.count_step(float(stats[0]) / ctx.world_size, int(stats[1]))
    return float(grad_norm)


def freeze_bilm(model: LanguageModel, state: TrainingState, T: TrainingSettings, progress: Progress,
                frozen: bool) -> None:
    set_bilm_trainable(model, not frozen)
    state.bilm_frozen = frozen
    progress.say(f"Steps {state.step + 1}-{T.freeze_bilm_steps}: the biLM is frozen, the softmax alone trains "
                 "(training.freeze_bilm_steps)" if frozen else f"Step {state.step + 1} on: the biLM trains too")
    progress.log("freeze_bilm", step=state.step, frozen=frozen)


def diverged(state: TrainingState, output: Path, progress: Progress, what: str) -> None:
    last = state.last_checkpoint_step
    kept = (f"the last good checkpoint (step {last}) in {checkpoint_path(output)} is kept"
            if last >= 0 else "no checkpoint had been written yet")
    message = (f"Training diverged: {what} at step {state.step + 1}. "
               f"Stopped without applying that update; {kept}. Lower training.learning_rate, set "
               f"training.grad_clip, or use precision fp32.")
    progress.log("error", step=state.step, message=message)
    raise NonFiniteLossError(message)


def stop_reason(T: TrainingSettings, state: TrainingState, ctx: DistContext) -> Optional[str]:
    """The one place the limits are compared with the state: the first limit reached, or None. The same answer
    on every process (the wall clock may differ between them, so any process's 'stop' stops all)."""
    reason = None
    if T.max_steps and state.step >= T.max_steps:
        reason = f"max_steps={T.max_steps}"
    elif T.max_tokens and state.tokens >= T.max_tokens:
        reason = f"max_tokens={T.max_tokens}"
    elif T.max_seconds and state.elapsed >= T.max_seconds:
        reason = f"max_seconds={T.max_seconds:g}"
    elif T.max_epochs and state.epoch >= T.max_epochs:
        reason = f"max_epochs={T.max_epochs}"
    if ctx.broadcast_flag(reason is not None) and reason is None:
        reason = f"max_seconds={T.max_seconds:g}"  # only the wall clock differs between processes
    return reason


def finish(plan: Plan, folder: OutputFolder, model: LanguageModel, save: Callable[[], None], state: TrainingState,
           vocab: Vocab, dev: Optional[DevSet], ctx: DistContext, progress: Progress, stop: str) -> Dict[str, Any]:
    """Final evaluation and checkpoint, then (rank 0) the export of the configured weights, metrics, training
    curve and summary."""
    state.elapsed = progress.elapsed()
    if dev is not None:
        record_evaluation(model, dev, vocab, ctx, state, progress)
    save()
    result: Dict[str, Any] = {"stop_reason": stop}
    if not ctx.is_main:
        return result
    out = folder.path
    exported = export_run(out, model, vocab, state, plan.settings, progress)
    final = {"stop_reason": stop, "exported": exported}
    if exported["dev"] is not None:
        final["dev"] = exported["dev"]  # "dev" describes the weights beside metrics.json
    progress.write_metrics(state, final)
    from .plot import plot_training_curve

    problem = plot_training_curve(out / "log.jsonl", out / "metrics.json", out / "training_curve.png")
    if problem:
        progress.say(problem)
    progress.log("end", step=state.step, stop_reason=stop, elapsed=state.elapsed)
    summary = f"Done ({stop}): {state.step} steps, {state.tokens:,} tokens in {format_time(state.elapsed)}"
    dev_result = exported["dev"]
    if dev_result:
        summary += (f"; dev perplexity {dev_result['perplexity']:.2f} (fwd {dev_result['forward_perplexity']:.2f}, "
                    f"bwd {dev_result['backward_perplexity']:.2f})")
    progress.say(summary)
    which = "the best dev evaluation" if exported["weights"] == "best" else "the last step"
    progress.say(f"Exported {out}/options.json, weights.hdf5, vocab.txt: the weights of step {exported['step']}, "
                 f"{which} (training.export = {plan.settings.training.export!r}); metrics in metrics.json")
    result.update(json.loads((out / "metrics.json").read_text(encoding="utf8")))
    return result


__all__ = ["pretrain", "make_plan", "train", "Plan", "PretrainError", "NonFiniteLossError", "PretrainInterrupted",
           "LanguageModel", "training_precision", "deterministic_algorithms", "stop_reason"]
