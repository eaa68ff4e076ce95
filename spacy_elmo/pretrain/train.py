"""The pretraining loop: biLM + shared LM head, stateless per-sentence training, checkpoints, evaluation,
export. Entry point: pretrain(config, output_dir, gpu_id=-1, resume=False).

Determinism and resumption: the data order is a pure function of (corpus, seed, epoch) and the position
in it is (epoch, batches consumed); the torch RNG (dropout, sampled-softmax negatives) is re-seeded at
the start of every step from (seed, step, rank). So a checkpoint needs only the model, the optimizer
(and gradient scaler) state and those counters to continue exactly where it stopped, plus the weights of
the best dev evaluation so far (what training.export = "best" exports at the end)."""
import dataclasses
import itertools
import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import nn

from ..bilm.bilm import BiLM
from ..bilm.chars import batch_to_char_ids
from ..bilm.heads import FullSoftmax, LMHead, make_head
from ..bilm.options import BiLMOptions, OptionsError
from ..bilm.precision import unsupported_reason
from ..bilm.weights import WeightFileError, check_weight_file, load_weights
from . import checkpoint as ckpt
from .config import RESUMABLE_CHANGES, Config, Settings, TrainingSettings, architecture_settings, flat, with_defaults
from .corpus import Corpus, batches_by_tokens, check_corpus, take
from .dev_set import dev_digest, same_dev_set
from .distributed import DistContext, setup, teardown
from .errors import NonFiniteLossError, PretrainError, PretrainInterrupted
from .export import export_pretrained
from .output import RUN_OUTPUTS, OutputLock, refuse_to_replace
from .schedule import budget_progress, learning_rate
from .training_bilm import TrainingBiLM
from .vocab import Vocab, build_vocab

PathLike = Union[str, Path]


class LanguageModel(nn.Module):
    """biLM + one softmax shared by both directions. forward() returns the training loss: the mean of
    the forward LM loss (state at t predicts token t+1, </S> included) and the backward LM loss (state at
    t predicts t-1, <S> included)."""

    def __init__(self, bilm: BiLM, head: LMHead, dropout: float = 0.0) -> None:
        super().__init__()
        self.bilm, self.head, self.dropout = bilm, head, dropout

    def _states(self, char_ids: torch.Tensor, targets: torch.Tensor):
        top = self.bilm.forward_with_boundaries(char_ids).activations[-1]  # (B, T+2, 2P)
        if self.dropout:
            top = nn.functional.dropout(top, self.dropout, self.training)
        P = top.shape[-1] // 2
        valid = (targets[:, 1:] != -100) & (targets[:, :-1] != -100)  # both ends of the pair exist
        fwd_h, fwd_t = top[:, :-1, :P][valid], targets[:, 1:][valid]
        bwd_h, bwd_t = top[:, 1:, P:][valid], targets[:, :-1][valid]
        return fwd_h, fwd_t, bwd_h, bwd_t

    def forward(self, char_ids: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fwd_h, fwd_t, bwd_h, bwd_t = self._states(char_ids, targets)
        fwd = self.head.loss(fwd_h, fwd_t)
        bwd = self.head.loss(bwd_h, bwd_t)
        return 0.5 * (fwd + bwd), fwd.detach(), bwd.detach()

    @torch.no_grad()
    def nll_sums(self, char_ids: torch.Tensor, targets: torch.Tensor) -> Tuple[float, float, int]:
        """Exact (full-softmax) summed NLL of both directions and the number of targets per direction."""
        fwd_h, fwd_t, bwd_h, bwd_t = self._states(char_ids, targets)
        return float(self.head.nll(fwd_h, fwd_t).sum()), float(self.head.nll(bwd_h, bwd_t).sum()), int(fwd_t.numel())


def step_seed(seed: int, step: int, rank: int) -> int:
    return ((int(seed) * 1_000_003 + int(step)) * 1009 + int(rank)) % (2**63 - 1)


def grouped(iterable: Iterable, n: int) -> Iterator[list]:
    """Consecutive groups of n; an incomplete last group is dropped so every rank does the same steps."""
    it = iter(iterable)
    while True:
        group = list(itertools.islice(it, n))
        if len(group) < n:
            return
        yield group


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """torch's deterministic algorithms for the run, restored afterwards (the setting is process-wide). On CPU with
    two threads an fp32 run otherwise differs from its rerun after a few steps (the same batches, other rounding), and
    a biLM that differs that little moved the demo's ner at 10% by 1.3 F1 (docs/EXPERIMENTS.md). New memory is not filled with NaN
    as the deterministic mode does by default: nothing here reads memory it has not written, and the filling cost
    ~18% of the words/s of the demo's pretraining."""
    import torch.utils.deterministic as determinism

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              determinism.fill_uninitialized_memory)
    if enabled:
        torch.use_deterministic_algorithms(True)
        determinism.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        determinism.fill_uninitialized_memory = before[2]


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def training_precision(setting: str, device: torch.device) -> str:
    """training.precision as it runs on `device`: "auto" is bf16 where the device runs bfloat16 natively
    (precision.unsupported_reason), else fp32; any other setting as given."""
    if setting != "auto":
        return setting
    return "fp32" if unsupported_reason("bfloat16", device) else "bf16"


class Run:
    """One pretraining run writing into output_dir. run() reads top to bottom: prepare the output
    directory, build the data and the model, train step by step until _stop_reason() names a limit,
    then _finish (final evaluation, checkpoint, export of the best or last weights, metrics)."""

    def __init__(self, config: Config, output_dir: PathLike, gpu_id: int = -1, resume: bool = False,
                 stdout: Callable[[str], None] = print, overwrite: bool = False) -> None:
        self.config = config  # kept as given: written to config.cfg and compared on --resume
        self.settings = Settings.from_config(config)  # everything else reads the typed settings
        self.T: TrainingSettings = self.settings.training
        self.output, self.gpu_id, self.resume, self.overwrite = Path(output_dir), gpu_id, resume, overwrite
        self._print = stdout
        self.ctx: DistContext = DistContext()
        self.state: Dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "tokens": 0, "elapsed": 0.0}
        self.history: List[Dict[str, Any]] = []
        self.extra_metrics: Dict[str, Any] = {}
        # The dev evaluation with the lowest perplexity so far, and (rank 0) a CPU copy of the model's
        # weights at that step: what training.export = "best" exports, kept in every checkpoint.
        self.best: Optional[Dict[str, Any]] = None
        self.best_weights: Optional[Dict[str, torch.Tensor]] = None
        self.dev_sentences: List[List[str]] = []
        self.dev_digest = ""
        self.dev_batches: List[List[List[str]]] = []
        self._signalled: Optional[int] = None  # SIGINT/SIGTERM received while training steps run
        self._in_loop = False
        self._t_start = 0.0  # time.time() minus the training time of earlier runs of this output
        self._last_ckpt_step = -1
        self._window = {"time": 0.0, "tokens": 0, "loss_sum": 0.0, "loss_n": 0}  # since the last log line
        self._first = {"step": 0, "tokens": 0, "time": 0.0}  # where this process started (for the eta)
        self._params: List[nn.Parameter] = []
        # paths.init_from: the biLM options that set the architecture (DIR's, or the checkpoint's copy)
        self._init_options: Optional[BiLMOptions] = None
        self._bilm: Optional[BiLM] = None
        self._lr = self.T.learning_rate  # the last step's rate (training.lr_schedule)
        self._bilm_frozen = False  # training.freeze_bilm_steps: requires_grad is off on the biLM's parameters
        self._lock = OutputLock(self.output)  # one run at a time writes into output_dir
        # Nothing is written into output_dir until every check has passed (_start_writing): log rows wait here.
        self._log_rows: Optional[List[Dict[str, Any]]] = []
        self._created_dir = False  # this run made output_dir: an empty one is removed when the run fails
        # A fresh run's outputs that were not there before it (None on --resume): a run that fails before its
        # first checkpoint removes them, so the corrected command is not refused for them.
        self._new_outputs: Optional[List[str]] = None
        self._saved_checkpoint = False
        self._vocab_file: Optional[Vocab] = None  # paths.vocab, read before anything is written

    # ---- output -------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if self.ctx.is_main:
            self._print(text)
            sys.stdout.flush()

    def log_event(self, event: str, **fields: Any) -> None:
        if not self.ctx.is_main:
            return
        row = {"event": event, "time": round(time.time(), 3), **fields}
        if self._log_rows is not None:
            self._log_rows.append(row)
            return
        with (self.output / "log.jsonl").open("a", encoding="utf8") as fout:
            fout.write(json.dumps(row) + "\n")

    def write_metrics(self, final: Optional[Dict[str, Any]] = None) -> None:
        if not self.ctx.is_main:
            return
        metrics = {
            "step": self.state["step"],
            "epoch": self.state["epoch"],
            "train_tokens": self.state["tokens"],
            "wall_seconds": round(self.state["elapsed"], 2),
            "tokens_per_second": round(self.state["tokens"] / max(self.state["elapsed"], 1e-9), 1),
            "dev": self.history[-1] if self.history else None,
            "best_dev": self.best,
            "history": self.history,
            **self.extra_metrics,
        }
        if final:
            metrics.update(final)
        text = json.dumps(metrics, indent=2)
        ckpt.atomic_write(self.output / "metrics.json", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    # ---- set-up -------------------------------------------------------------------------------------
    def _check_paths(self) -> None:
        paths = self.settings.paths
        if not paths.train:
            raise PretrainError("No training corpus: set paths.train in the config or pass --paths.train PATH.")
        for key in ("train", "dev", "vocab"):
            value = getattr(paths, key)
            if value and not Path(value).exists():
                raise PretrainError(f"paths.{key} does not exist: {value}")
        c = self.settings.corpus
        for key in ("train", "dev"):
            if getattr(paths, key):  # an empty directory or a missing spaCy pipeline: an error now, before --output is touched
                check_corpus(getattr(paths, key), c.format, c.spacy_model)
        if paths.vocab:
            try:
                self._vocab_file = Vocab.from_file(paths.vocab)
            except (OSError, ValueError) as err:
                raise PretrainError(f"paths.vocab {paths.vocab}: {str(err).rstrip('.')}. It must be a UTF-8 text file "
                                    "with one token per line (bilm-tf's vocab.txt), or set paths.vocab = null to build "
                                    "the vocabulary from paths.train.") from err
        if self.output.exists() and not self.output.is_dir():
            raise PretrainError(f"--output {self.output} is a file: give a directory (a new one, or an earlier run's "
                                "to --resume).")
        out = self.output.resolve()
        for key in ("train", "dev"):
            value = getattr(paths, key)
            if value and Path(value).is_dir() and (out == Path(value).resolve() or Path(value).resolve() in out.parents):
                raise PretrainError(
                    f"--output {self.output} is inside the corpus directory paths.{key} = {value}: the run's own files "
                    "(config.cfg, vocab.txt, logs) would be read as text. Choose an --output outside it."
                )
        self._check_init_from()

    def _check_init_from(self) -> None:
        """paths.init_from (--init-from DIR): a biLM in bilm-tf's layout, refused before --output is touched
        when it cannot be used. Not read on --resume of a checkpoint: the checkpoint's weights win."""
        value = self.settings.paths.init_from
        if not value:
            return
        source = Path(value)
        if source.resolve() == self.output.resolve():
            raise PretrainError(
                f"--init-from {source} is --output itself: the run would replace the biLM it starts from. Choose "
                "another --output (to continue a run of this tool in its own folder, use --resume)."
            )
        if self.resume and ckpt.checkpoint_path(self.output).is_file():
            return
        if not source.is_dir():
            raise PretrainError(f"--init-from {source}: no such directory (it must hold bilm-tf's options.json + weights.hdf5).")
        missing = [name for name in ("options.json", "weights.hdf5") if not (source / name).is_file()]
        if missing:
            raise PretrainError(
                f"--init-from {source} has no {' and no '.join(missing)}: it must hold a biLM in bilm-tf's layout "
                "(options.json + weights.hdf5), e.g. a published ELMo or the --output of an earlier pretrain."
            )
        try:
            options = BiLMOptions.from_file(source / "options.json")
            check_weight_file(source / "weights.hdf5", options)
        except (OptionsError, WeightFileError) as err:
            raise PretrainError(f"--init-from {source}: {err}") from err
        self._init_options = options

    def _apply_init_from(self, resuming: bool) -> None:
        """With paths.init_from the biLM's options.json sets every [model] setting but dropout (it wins over
        the config, and the replaced values are named); the config written to config.cfg says so. On --resume
        the options come from the checkpoint, so DIR need not exist any more."""
        source = self.settings.paths.init_from
        if not source:
            return
        if resuming:
            saved = ckpt.load_checkpoint(self.output, mmap=True)
            if saved.get("bilm_options") is None:
                return  # a checkpoint of a run without --init-from: _restore names paths.init_from as changed
            self._init_options = BiLMOptions.from_dict(saved["bilm_options"])
            self.say(f"--resume: the biLM continues from {ckpt.checkpoint_path(self.output)}; --init-from {source} is not read again.")
        wanted = architecture_settings(self._init_options)
        changed = {key: value for key, value in wanted.items() if self.config["model"].get(key) != value}
        if not changed:
            return
        if not resuming:
            self.say(f"--init-from {source}: its options.json sets the biLM's architecture, over the config's [model]: "
                     + ", ".join(f"{key} {self.config['model'].get(key)!r} -> {value!r}" for key, value in changed.items()))
        config = Config().from_str(self.config.to_str())
        for key, value in changed.items():
            config["model"][key] = value
        self.config = config
        self.settings = Settings.from_config(config)
        self.T = self.settings.training

    def _prepare_output(self) -> bool:
        """Refuse what must not be overwritten, create --output, clear stale temporaries, write config.cfg
        for a fresh run. Returns whether this run resumes a checkpoint."""
        self._check_paths()
        self._created_dir = not self.output.exists()
        try:
            self.output.mkdir(parents=True, exist_ok=True)
            if self.ctx.is_main:
                self._lock.acquire()  # before anything in the folder is read or written
        except OSError as err:
            raise PretrainError(f"Cannot write into --output {self.output}: {err.strerror or err}. Choose a folder "
                                "you can write to.") from err
        has_checkpoint = ckpt.checkpoint_path(self.output).is_file()
        if has_checkpoint and not self.resume:
            raise PretrainError(f"{self.output} already holds a checkpoint: pass --resume to continue it, or choose another --output.")
        resuming = self.resume and has_checkpoint
        if not resuming:
            refuse_to_replace(self.output, self.overwrite)
            self._new_outputs = [name for name in RUN_OUTPUTS if not (self.output / name).exists()]
        if self.resume and not has_checkpoint:
            self.say(f"--resume: no checkpoint in {self.output} yet; starting from scratch.")
        self._apply_init_from(resuming)
        return resuming

    def _start_writing(self, resuming: bool) -> None:
        """Every check has passed (settings, corpus, vocabulary, model, checkpoint): the run's first writes."""
        if not self.ctx.is_main:
            return
        ckpt.remove_stale_temporaries(self.output)
        if not resuming:
            (self.output / "log.jsonl").unlink(missing_ok=True)
            self._write_config()  # on --resume, written once the checkpoint has accepted this config (_build_model)
            self.vocab.to_file(self.output / "vocab.txt")
        rows, self._log_rows = self._log_rows or [], None
        for row in rows:
            self.log_event(row.pop("event"), **row)

    def _corpus(self, path: PathLike) -> Corpus:
        c = self.settings.corpus
        return Corpus(path, fmt=c.format, max_length=c.max_length, spacy_model=c.spacy_model)

    def _make_vocab(self, resuming: bool) -> Vocab:
        paths, v = self.settings.paths, self.settings.vocab
        if resuming and (self.output / "vocab.txt").is_file():
            return Vocab.from_file(self.output / "vocab.txt")
        if self._vocab_file is not None:
            vocab = self._vocab_file
            self.say(f"Vocabulary: {len(vocab):,} tokens from {paths.vocab}")
            return vocab
        corpus = self._corpus(paths.train)
        start = time.time()
        vocab = build_vocab(corpus, max_size=v.max_size, min_count=v.min_count)
        stats = corpus.stats.as_dict()
        self.extra_metrics["train_corpus"] = stats
        self.say(
            f"Corpus {paths.train}: {stats['sentences']:,} sentences, {stats['tokens']:,} tokens in "
            f"{stats['files']} file(s); skipped {stats['blank']:,} blank and {stats['undecodable']:,} undecodable "
            f"line(s), {stats['malformed']:,} malformed record(s); {stats['long_split']:,} long sentence(s) split "
            f"({time.time() - start:.1f}s)"
        )
        covered = sum(vocab.counts.get(t, 0) for t in vocab.tokens[3:]) if vocab.counts else 0
        self.say(f"Vocabulary: {len(vocab):,} tokens (top of {len(vocab.counts or {}):,} types, "
                 f"{covered / max(1, stats['tokens']):.1%} of training tokens)")
        self.log_event("corpus", split="train", **stats, vocab_size=len(vocab))
        return vocab

    def _dev_batches(self) -> List[List[List[str]]]:
        dev = self.settings.paths.dev
        if not dev:
            return []
        corpus = self._corpus(dev)
        sentences = take(corpus, self.settings.corpus.dev_max_sentences)
        stats = corpus.stats.as_dict()
        self.say(f"Dev corpus {dev}: {len(sentences):,} sentences used; skipped {stats['blank']:,} blank and "
                 f"{stats['undecodable']:,} undecodable line(s)")
        self.dev_sentences = sentences
        self.dev_digest = dev_digest(sentences)
        return list(batches_by_tokens(sentences, self.T.batch_tokens, seed=0, buffer_size=max(1, len(sentences)), shuffle=False))

    def _build_data(self, resuming: bool) -> None:
        self.vocab = self._make_vocab(resuming)
        self._check_cutoffs()
        self.dev_batches = self._dev_batches()
        if not resuming and self.dev_batches and self.vocab.counts is not None:
            self.extra_metrics["unigram_perplexity"] = self.vocab.unigram_perplexity(self.dev_sentences)

    def _say_architecture(self) -> None:
        """Before the corpus is read: which biLM this run trains and how large it is."""
        options = self._init_options or self.settings.model.bilm_options()
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            n_params = sum(p.numel() for p in BiLM(options).parameters())
        source = f"--init-from {self.settings.paths.init_from}" if self._init_options else "[model]"
        self.say(f"Architecture ({source}): biLM lstm_dim {options.lstm_dim} x {options.n_layers} layers, projection_dim "
                 f"{options.projection_dim}, {len(options.filters)} char filter widths ({options.n_filters} filters), "
                 f"{options.n_highway} highway: {n_params / 1e6:.2f}M parameters, plus the softmax over the vocabulary")

    def _check_cutoffs(self) -> None:
        """The adaptive softmax's cutoffs split the vocabulary: one at or beyond its end is a mistake, not a default."""
        s, n = self.settings.softmax, len(self.vocab)
        beyond = [c for c in s.cutoffs if c >= n]
        if s.type == "adaptive" and beyond:
            raise PretrainError(
                f"softmax.cutoffs {list(s.cutoffs)}: {', '.join(map(str, beyond))} not below the vocabulary's {n:,} "
                f"tokens. Set cutoffs below {n:,}, or cutoffs = [] for the defaults (5% and 25% of the vocabulary).")

    def _build_model(self, resuming: bool) -> Tuple[LanguageModel, nn.Module, torch.optim.Optimizer, "torch.amp.GradScaler"]:
        """The model (seeded), its optimizer and gradient scaler, restored from the checkpoint on --resume;
        plus the module that trains (the model itself, or its DistributedDataParallel wrapper)."""
        m, s, ctx = self.settings.model, self.settings.softmax, self.ctx
        if self._init_options is not None:  # DIR's options.json (its n_characters and other keys kept)
            options = BiLMOptions.from_dict(self._init_options.to_dict())
            options.extra["init_from"] = str(self.settings.paths.init_from)
        else:
            options = m.bilm_options()
        options.extra.update({"bidirectional": True, "dropout": m.dropout, "n_tokens_vocab": len(self.vocab)})
        torch.manual_seed(self.T.seed)
        bilm = TrainingBiLM(options, dropout=m.dropout)
        head = make_head(s.type, options.projection_dim, len(self.vocab), n_samples=s.n_samples,
                         cutoffs=list(s.cutoffs), div_value=s.div_value)
        model = LanguageModel(bilm, head, dropout=m.dropout).to(ctx.device)
        if self._init_options is not None and not resuming:
            self._load_init_from(model)
        self._bilm = model.bilm
        optimizer = self._optimizer(model.parameters())
        self._params = [p for p in model.parameters() if p.requires_grad]  # what gradient clipping sees
        scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.T.precision == "fp16")
        if resuming:
            self._restore(model, optimizer, scaler)
            if ctx.is_main:
                self._write_config()
        n_params = sum(p.numel() for p in model.parameters())
        self.say(f"Model: biLM {options.lstm_dim}x{options.n_layers} proj {options.projection_dim}, "
                 f"{options.n_filters} char filters, {options.n_highway} highway; {s.type} softmax over "
                 f"{len(self.vocab):,} tokens; {n_params / 1e6:.2f}M parameters; device {ctx.device}"
                 + (f"; {ctx.world_size} processes" if ctx.distributed else ""))
        self.log_event("start", step=self.state["step"], resumed=resuming, world_size=ctx.world_size,
                       parameters=n_params, vocab_size=len(self.vocab))
        trainer: nn.Module = model
        if ctx.distributed:
            trainer = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=s.type == "adaptive" or self.T.freeze_bilm_steps > 0,
            )
        return model, trainer, optimizer, scaler

    def _load_init_from(self, model: LanguageModel) -> None:
        """The biLM's weights exactly as DIR/weights.hdf5 holds them; the softmax new, or in part DIR's own
        (softmax.reuse) when DIR is an earlier run of this tool with a full or sampled softmax."""
        source = Path(self.settings.paths.init_from)
        try:
            load_weights(model.bilm, source / "weights.hdf5")
        except WeightFileError as err:
            raise PretrainError(f"--init-from {source}: {err}") from err
        reused = self._reuse_softmax(model.head, source) if self.settings.softmax.reuse else 0
        kind = self.settings.softmax.type
        head = (f"softmax rows of {reused:,} of the {len(self.vocab):,} tokens from its softmax/W and softmax/b, the rest new"
                if reused else f"a new {kind} softmax over the {len(self.vocab):,} tokens of the vocabulary")
        frozen = self.T.freeze_bilm_steps
        self.say(f"--init-from {source}: biLM weights from weights.hdf5; {head}"
                 + (f"; the first {frozen:,} step(s) train the softmax only" if frozen else ""))
        self.log_event("init_from", path=str(source), softmax_rows_reused=reused, freeze_bilm_steps=frozen)

    def _reuse_softmax(self, head: LMHead, source: Path) -> int:
        """Copy DIR's softmax rows of the tokens in both vocabularies; the number of rows copied."""
        vocab_file, weight_file = source / "vocab.txt", source / "weights.hdf5"
        if not isinstance(head, FullSoftmax) or not vocab_file.is_file():
            return 0  # the adaptive softmax has no softmax/W; published biLMs have no vocab.txt
        import h5py

        with h5py.File(weight_file, "r") as fin:
            if not (isinstance(fin.get("softmax/W"), h5py.Dataset) and isinstance(fin.get("softmax/b"), h5py.Dataset)):
                return 0
            weight, bias = fin["softmax/W"][...], fin["softmax/b"][...]
        try:
            old = Vocab.from_file(vocab_file)
        except (ValueError, UnicodeDecodeError):
            return 0
        if weight.shape != (len(old), head.input_dim) or bias.shape != (len(old),):
            self.say(f"--init-from {source}: softmax/W {weight.shape} does not fit its vocab.txt ({len(old):,} tokens) "
                     f"and projection {head.input_dim}: not reused.")
            return 0
        pairs = [(i, old.index[token]) for i, token in enumerate(self.vocab.tokens) if token in old.index]
        new_rows = torch.tensor([i for i, _ in pairs], dtype=torch.long, device=head.weight.device)
        old_rows = [j for _, j in pairs]
        with torch.no_grad():
            head.weight[new_rows] = torch.from_numpy(weight[old_rows]).to(head.weight)
            head.bias[new_rows] = torch.from_numpy(bias[old_rows]).to(head.bias)
        return len(pairs)

    def _freeze_bilm(self, frozen: bool) -> None:
        """training.freeze_bilm_steps: no gradient reaches the biLM (nor its optimizer state) while frozen."""
        for param in self._bilm.parameters():
            param.requires_grad_(not frozen)
        self._bilm_frozen = frozen
        step, last = self.state["step"], self.T.freeze_bilm_steps
        self.say(f"Steps {step + 1}-{last}: the biLM is frozen, the softmax alone trains (training.freeze_bilm_steps)"
                 if frozen else f"Step {step + 1} on: the biLM trains too")
        self.log_event("freeze_bilm", step=step, frozen=frozen)

    def _optimizer(self, params) -> torch.optim.Optimizer:
        if self.T.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=self.T.learning_rate, initial_accumulator_value=self.T.initial_accumulator_value)
        return torch.optim.Adam(params, lr=self.T.learning_rate)  # check_config allows only these two

    def _resolve_precision(self) -> None:
        """training.precision = "auto": bf16 where the device runs it natively (a CPU with AVX512_BF16 or AMX,
        a CUDA GPU of compute capability 8.0+), else fp32. bf16 trains to the same dev perplexity as fp32
        (BENCHMARKS.md); where it is native it is faster on GEMMs large enough to outweigh its conversions
        (3,000-token batches of the small config on a 2-core Xeon), not on small ones (1,000: fp32 1.16x,
        configs/pretrain_small.cfg); where it would be emulated it is slower. The precision that ran goes
        into metrics.json either way."""
        if self.T.precision == "auto":
            reason = unsupported_reason("bfloat16", self.ctx.device)
            self.T = dataclasses.replace(self.T, precision=training_precision("auto", self.ctx.device))
            self.say(f"training.precision auto -> {self.T.precision}" + (f" ({reason})" if reason else
                     f" (native bfloat16 on {self.ctx.device.type})"))
        self.extra_metrics["precision"] = self.T.precision

    def _autocast(self):
        if self.T.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=torch.bfloat16 if self.T.precision == "bf16" else torch.float16)

    # ---- the data ----------------------------------------------------------------------------------
    def _batches(self) -> Iterator[Optional[Tuple[int, List[List[str]]]]]:
        """This process's training batches from the saved position on, as (index in the epoch, batch); None
        after each epoch, once state["epoch"] has advanced. The order is a pure function of the corpus, the
        seed and the epoch, so a resumed run skips exactly the batches the checkpoint had consumed."""
        ctx = self.ctx
        while True:
            epoch, skip = self.state["epoch"], self.state["batch_in_epoch"]
            corpus = self._corpus(self.settings.paths.train)
            stream = batches_by_tokens(corpus, self.T.batch_tokens, seed=self.T.seed * 7919 + epoch,
                                       buffer_size=self.settings.corpus.buffer_size,
                                       max_batch_size=self.T.max_batch_size)
            progressed = False
            for index, group in enumerate(grouped(stream, ctx.world_size)):
                if index >= skip:
                    progressed = True
                    yield index, group[ctx.rank]
            if not progressed and skip == 0:
                raise PretrainError(f"The training corpus {self.settings.paths.train} yields no batches "
                                    f"(empty, or fewer batches than processes).")
            if ctx.is_main and epoch == 0:
                self.log_event("corpus", split="train-epoch", step=self.state["step"], **corpus.stats.as_dict())
            self.say(f"Epoch {epoch} done at step {self.state['step']}")
            self.state["epoch"] = epoch + 1
            self.state["batch_in_epoch"] = 0
            yield None

    # ---- training -----------------------------------------------------------------------------------
    def _train_step(self, trainer: nn.Module, optimizer: torch.optim.Optimizer, scaler, index: int,
                    batch: List[List[str]]) -> float:
        """One optimizer step on this process's batch (gradients averaged over processes by DDP); the state
        then counts the step, the batch and the tokens of all processes. Returns the gradient norm."""
        ctx, step = self.ctx, self.state["step"]
        if (step < self.T.freeze_bilm_steps) != self._bilm_frozen:
            self._freeze_bilm(not self._bilm_frozen)
        torch.manual_seed(step_seed(self.T.seed, step, ctx.rank))
        char_ids = torch.from_numpy(batch_to_char_ids(batch, self.settings.model.max_characters_per_token)).to(ctx.device)
        targets = self.vocab.target_ids(batch).to(ctx.device)
        with self._autocast():
            loss, _, _ = trainer(char_ids, targets)
        optimizer.zero_grad(set_to_none=True)
        # the configured rate and schedule win over the optimizer state's (both may change on --resume)
        self._lr = learning_rate(self.T, step, self.state["tokens"])
        for group in optimizer.param_groups:
            group["lr"] = self._lr
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grad_clip = self.T.grad_clip
        grad_norm = nn.utils.clip_grad_norm_(self._params, grad_clip) if grad_clip > 0 else torch.zeros(())
        stats = torch.tensor([float(loss.detach()), float(sum(len(x) for x in batch)),
                              0.0 if (torch.isfinite(loss) and torch.isfinite(grad_norm)) else 1.0],
                             dtype=torch.float64, device=ctx.device)
        ctx.all_reduce_sum(stats)
        if stats[2] > 0 and not scaler.is_enabled():
            self._diverged(step, float(loss.detach()), float(grad_norm))
        scaler.step(optimizer)
        scaler.update()
        self.state["step"] = step + 1
        self.state["batch_in_epoch"] = index + 1
        self.state["tokens"] += int(stats[1])
        self.state["elapsed"] = time.time() - self._t_start
        w = self._window
        w["loss_sum"] += float(stats[0]) / ctx.world_size
        w["loss_n"] += 1
        w["tokens"] += int(stats[1])
        return float(grad_norm)

    def _stop_reason(self) -> Optional[str]:
        """The one place the limits are compared with the state: the first limit reached, or None. The same
        answer on every process (the wall clock may differ between them, so any process's 'stop' stops all)."""
        T, state = self.T, self.state
        reason = None
        if T.max_steps and state["step"] >= T.max_steps:
            reason = f"max_steps={T.max_steps}"
        elif T.max_tokens and state["tokens"] >= T.max_tokens:
            reason = f"max_tokens={T.max_tokens}"
        elif T.max_seconds and state["elapsed"] >= T.max_seconds:
            reason = f"max_seconds={T.max_seconds:g}"
        elif T.max_epochs and state["epoch"] >= T.max_epochs:
            reason = f"max_epochs={T.max_epochs}"
        if self.ctx.broadcast_flag(reason is not None) and reason is None:
            reason = f"max_seconds={T.max_seconds:g}"  # only the wall clock differs between processes
        return reason

    def _after_step(self, model: LanguageModel, optimizer, scaler, grad_norm: float, stop: Optional[str]) -> None:
        """Progress line, then: a stop signal saves a checkpoint and ends the run; otherwise the periodic
        evaluation and checkpoint (skipped at the last step: _finish does both)."""
        step, T = self.state["step"], self.T
        if T.log_every and step % T.log_every == 0:
            self._log_progress(grad_norm)
        if self.ctx.broadcast_flag(self._signalled is not None):
            self.save(model, optimizer, scaler)
            name = signal.Signals(self._signalled).name if self._signalled else "a signal on another process"
            raise PretrainInterrupted(
                f"Stopped by {name} after step {step}; checkpoint saved in {ckpt.checkpoint_path(self.output)}. "
                "Run the same command with --resume to continue."
            )
        if stop is None and T.eval_every and step % T.eval_every == 0:
            self._record_eval(model)
        if stop is None and T.checkpoint_every and step % T.checkpoint_every == 0:
            self.save(model, optimizer, scaler)

    def _start_clock(self, resuming: bool) -> None:
        """Training time counts on from the checkpoint's; rates and the eta count this process's steps."""
        now = time.time()
        self._t_start = now - self.state["elapsed"]
        self._first = {"step": self.state["step"], "tokens": self.state["tokens"], "time": now}
        self._window["time"] = now
        self._last_ckpt_step = self.state["step"] if resuming else -1

    def _run(self) -> Dict[str, Any]:
        if self.T.threads > 0:
            torch.set_num_threads(self.T.threads)
        resuming = self._prepare_output()
        # after _prepare_output: --init-from may rebuild self.T from the config. CPU only: on CUDA, deterministic cuBLAS
        # needs CUBLAS_WORKSPACE_CONFIG set before the process starts
        with deterministic_algorithms(self.T.deterministic and self.ctx.device.type == "cpu"):
            return self._train(resuming)

    def _train(self, resuming: bool) -> Dict[str, Any]:
        self._say_architecture()
        self._resolve_precision()
        self._build_data(resuming)
        model, trainer, optimizer, scaler = self._build_model(resuming)
        self._start_writing(resuming)
        if not resuming and self.dev_batches and self.T.eval_every > 0 and self.T.eval_at_start:
            self._record_eval(model)

        self._start_clock(resuming)
        batches = self._batches()
        stop = self._stop_reason()  # e.g. --resume of a finished run
        model.train()
        self._in_loop = True  # from here a SIGINT/SIGTERM saves a checkpoint before stopping
        while stop is None:
            item = next(batches)
            if item is None:  # an epoch ended
                stop = self._stop_reason()
                continue
            index, batch = item
            grad_norm = self._train_step(trainer, optimizer, scaler, index, batch)
            stop = self._stop_reason()
            self._after_step(model, optimizer, scaler, grad_norm, stop)
        self._in_loop = False
        return self._finish(model, optimizer, scaler, stop)

    # ---- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, model: LanguageModel) -> Optional[Dict[str, Any]]:
        if not self.dev_batches:
            return None
        was_training = model.training
        model.eval()
        max_chars = model.bilm.options.max_characters_per_token
        sums = torch.zeros(3, dtype=torch.float64, device=self.ctx.device)
        try:
            for batch in self.dev_batches[self.ctx.rank :: self.ctx.world_size]:
                char_ids = torch.from_numpy(batch_to_char_ids(batch, max_chars)).to(self.ctx.device)
                targets = self.vocab.target_ids(batch).to(self.ctx.device)
                # fp32 evaluation: exact perplexities, and the biLM's in-place inference path takes no autocast
                f, b, n = model.nll_sums(char_ids, targets)
                sums += torch.tensor([f, b, n], dtype=torch.float64, device=self.ctx.device)
        finally:
            model.train(was_training)
        self.ctx.all_reduce_sum(sums)
        f, b, n = sums.tolist()
        n = max(n, 1.0)
        return {
            "step": self.state["step"],
            "forward_perplexity": math.exp(f / n),
            "backward_perplexity": math.exp(b / n),
            "perplexity": math.exp((f + b) / (2 * n)),
            "loss": (f + b) / (2 * n),
            "n_targets": int(n),
            "dev_sentences": len(self.dev_sentences),
            "dev_digest": self.dev_digest,
        }

    def _record_eval(self, model: LanguageModel) -> None:
        result = self.evaluate(model)
        if result is None:
            return
        self.history.append(result)
        if self.best is not None and not same_dev_set(self.best, result):
            # e.g. --resume with another paths.dev or corpus.dev_max_sentences: perplexities on different text do not
            # compare, so the best so far must not win (or lose) against this one on numbers alone
            self.say(f"  The dev set differs from the one of the best evaluation so far (step {self.best['step']}, "
                     f"{self.best.get('dev_sentences', '?')} sentences, now {result['dev_sentences']}): "
                     "the best restarts from this evaluation.")
            self.best = None
            # it was the old dev set's, and a resumed run has no training counts to recompute it
            self.extra_metrics.pop("unigram_perplexity", None)
        if self.best is None or result["perplexity"] < self.best["perplexity"]:
            self.best = dict(result)
            if self.ctx.is_main:  # a copy, not a view: training goes on updating the model in place
                self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        base = self.extra_metrics.get("unigram_perplexity")
        base_txt = f" (unigram baseline {base:.1f})" if base else ""
        best_txt = "" if self.best["step"] == result["step"] else f"; best {self.best['perplexity']:.2f} at step {self.best['step']}"
        self.say(f"  dev @ step {result['step']}: perplexity fwd {result['forward_perplexity']:.2f}  "
                 f"bwd {result['backward_perplexity']:.2f}  avg {result['perplexity']:.2f}{base_txt}{best_txt}")
        self.log_event("eval", **result)
        self.write_metrics()

    # ---- checkpoints --------------------------------------------------------------------------------
    def save(self, model: LanguageModel, optimizer, scaler) -> None:
        if not self.ctx.is_main:
            return
        step = self.state["step"]
        best_is_now = self.best is not None and self.best["step"] == step
        state = {
            "format": 1,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "state": dict(self.state),
            "history": self.history,
            "extra_metrics": json.loads(json.dumps(self.extra_metrics)),
            "config": self.config.to_str(),
            "vocab_sha256": self.vocab.sha256(),  # vocab.txt must not change under a --resume
            # the biLM's options (with --init-from, DIR's: the config has no n_characters), so a resumed run
            # builds the same biLM without reading DIR again
            "bilm_options": model.bilm.options.to_dict(),
            "torch_rng": torch.get_rng_state(),
            # dropout on a GPU draws from the device's generator: exact resume needs its state too
            "cuda_rng": torch.cuda.get_rng_state(self.ctx.device) if self.ctx.device.type == "cuda" else None,
            # The best weights live in the checkpoint (not in a file of their own), so a kill -9 between two
            # checkpoints can never leave best weights that a resumed run does not know the step of.
            # None: they are "model" above (the best evaluation is this step's), stored once.
            "best": self.best,
            "best_model": None if best_is_now else self.best_weights,
        }
        try:
            ckpt.save_checkpoint(self.output, state)
        except OSError as err:
            last = (f"the last complete checkpoint (step {self._last_ckpt_step}) is kept" if self._last_ckpt_step >= 0
                    else "no checkpoint had been written yet")
            raise PretrainError(f"Cannot write the checkpoint {ckpt.checkpoint_path(self.output)} at step {step}: "
                                f"{err.strerror or err}; {last}. Free some space (or raise the file-size limit, ulimit -f), "
                                "then run the same command with --resume.") from err
        self._saved_checkpoint = True
        self._last_ckpt_step = step
        self.log_event("checkpoint", step=step)

    def _write_config(self) -> None:
        text = self.config.to_str()
        ckpt.atomic_write(self.output / "config.cfg", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    def _restore(self, model: LanguageModel, optimizer, scaler) -> None:
        saved = ckpt.load_checkpoint(self.output, map_location=self.ctx.device)
        old = flat(with_defaults(saved["config"]))
        new = flat(self.config)
        changed = sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
        if changed:
            raise PretrainError(
                "--resume with a config that differs from the checkpoint's in: " + ", ".join(changed)
                + f". Only these may change on resume: {', '.join(sorted(RESUMABLE_CHANGES))}."
            )
        if saved.get("vocab_sha256", self.vocab.sha256()) != self.vocab.sha256():
            raise PretrainError(
                f"{self.output / 'vocab.txt'} ({len(self.vocab):,} tokens) is not the vocabulary the checkpoint was "
                "trained with: it was edited or replaced. Restore it, or start a new run in another --output."
            )
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as err:  # an older checkpoint without the vocabulary's hash: sizes tell
            raise PretrainError(f"{ckpt.checkpoint_path(self.output)} does not fit the model built from the config and "
                                f"{self.output / 'vocab.txt'} (was vocab.txt edited?): {str(err)[:300]}") from err
        optimizer.load_state_dict(saved["optimizer"])  # its saved rate is replaced at every step (_train_step)
        if saved.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(saved["scaler"])
        self.state.update(saved["state"])
        self.history = list(saved.get("history", []))
        self.extra_metrics.update(saved.get("extra_metrics", {}))
        self.best = saved.get("best")
        if self.best is not None and self.ctx.is_main:
            weights = saved.get("best_model") or saved["model"]
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
        # the checkpoint is loaded onto the training device, but generator states are CPU byte tensors
        torch.set_rng_state(saved["torch_rng"].cpu())
        if saved.get("cuda_rng") is not None and self.ctx.device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), self.ctx.device)
        if self.ctx.is_main and (self.output / "log.jsonl").is_file():
            # Drop log rows written after the checkpoint: those steps are about to be redone.
            keep = []
            for line in (self.output / "log.jsonl").read_text(encoding="utf8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("step", 0) <= self.state["step"]:
                    keep.append(line)
            text = "".join(line + "\n" for line in keep)
            ckpt.atomic_write(self.output / "log.jsonl", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))
        self.say(f"Resumed from {ckpt.checkpoint_path(self.output)} at step {self.state['step']} "
                 f"(epoch {self.state['epoch']}, batch {self.state['batch_in_epoch']})")

    # ---- the end ------------------------------------------------------------------------------------
    def _finish(self, model: LanguageModel, optimizer, scaler, stop_reason: str) -> Dict[str, Any]:
        """Final evaluation and checkpoint, then (rank 0) the export of the configured weights, metrics,
        training curve and summary."""
        self.state["elapsed"] = time.time() - self._t_start
        self._record_eval(model)
        self.save(model, optimizer, scaler)
        result: Dict[str, Any] = {"stop_reason": stop_reason}
        if not self.ctx.is_main:
            return result
        exported = self._export(model)
        final = {"stop_reason": stop_reason, "exported": exported}
        if exported["dev"] is not None:
            final["dev"] = exported["dev"]  # "dev" describes the weights beside metrics.json
        self.write_metrics(final)
        from .plot import plot_training_curve

        problem = plot_training_curve(self.output / "log.jsonl", self.output / "metrics.json", self.output / "training_curve.png")
        if problem:
            self.say(problem)
        self.log_event("end", step=self.state["step"], stop_reason=stop_reason, elapsed=self.state["elapsed"])
        summary = f"Done ({stop_reason}): {self.state['step']} steps, {self.state['tokens']:,} tokens in {_fmt_time(self.state['elapsed'])}"
        dev = exported["dev"]
        if dev:
            summary += f"; dev perplexity {dev['perplexity']:.2f} (fwd {dev['forward_perplexity']:.2f}, bwd {dev['backward_perplexity']:.2f})"
        self.say(summary)
        which = "the best dev evaluation" if exported["weights"] == "best" else "the last step"
        self.say(f"Exported {self.output}/options.json, weights.hdf5, vocab.txt: the weights of step {exported['step']}, "
                 f"{which} (training.export = {self.T.export!r}); metrics in metrics.json")
        result.update(json.loads((self.output / "metrics.json").read_text(encoding="utf8")))
        return result

    def _export(self, model: LanguageModel) -> Dict[str, Any]:
        """Export the best dev evaluation's weights (training.export = "best", with a dev set) or the last
        step's, and say which step they are from."""
        last_dev = self.history[-1] if self.history and self.history[-1]["step"] == self.state["step"] else None
        if self.T.export == "best" and self.best is not None:
            which, step, dev = "best", self.best["step"], self.best
            if step != self.state["step"]:
                model.load_state_dict(self.best_weights)  # the run is over: the final checkpoint is written
        else:
            which, step, dev = "last", self.state["step"], last_dev
        s = self.settings.softmax
        extra = {"n_train_tokens": self.state["tokens"], "n_epochs": self.state["epoch"],
                 "all_clip_norm_val": self.T.grad_clip, "n_negative_samples_batch": s.n_samples if s.type == "sampled" else None,
                 "softmax": s.type, "exported_step": step}
        export_pretrained(self.output, model.bilm, self.vocab, model.head, extra=extra)
        self.log_event("export", weights=which, step=step, perplexity=dev["perplexity"] if dev else None)
        return {"weights": which, "step": step, "dev": dev}

    # ---- main ---------------------------------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        self.ctx = setup(self.gpu_id)
        restore_handlers = self._catch_stop_signals()
        try:
            try:
                result = self._run()
            except BaseException:
                self._remove_unfinished_outputs()
                raise
            # Every rank leaves together: rank 0 still exports when the others are done, and a rank that tore down its
            # gloo group meanwhile once aborted at exit ("terminate called without an active exception", a CI run of
            # test_two_processes_with_gloo_give_the_same_loss_curve_shape). Not on errors: a failed rank never arrives.
            self.ctx.barrier()
            return result
        finally:
            self._lock.release()
            restore_handlers()
            teardown(self.ctx)

    def _remove_unfinished_outputs(self) -> None:
        """A fresh run that failed before its first checkpoint has nothing to resume: the files it wrote go, so
        the corrected command is not refused for them (and an output folder it created, left empty, goes too)."""
        if not self.ctx.is_main or not self._lock.held:
            return  # nothing written (or another run's folder)
        if self._new_outputs is not None and not self._saved_checkpoint:
            for name in self._new_outputs:
                (self.output / name).unlink(missing_ok=True)
        if self._created_dir:
            self._lock.release()
            try:
                self.output.rmdir()  # only if empty
            except OSError:
                pass

    def _catch_stop_signals(self) -> Callable[[], None]:
        """Ctrl+C or `kill` (SIGTERM, as schedulers send) while steps run: finish the step, save a checkpoint
        and stop, so the work since the last periodic checkpoint is not lost. A second signal, or one
        outside the training loop (nothing new to save), stops at once as usual."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signal handlers can only be set from the main thread

        def handler(signum, frame) -> None:
            if self._in_loop and self._signalled is None:
                self._signalled = signum
                self.say(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                         "(send it again to stop at once, losing the steps since the last checkpoint).")
                return
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # ---- progress and errors ------------------------------------------------------------------------
    def _log_progress(self, grad_norm: float) -> None:
        """The progress line and a "train" log row for the steps since the last one."""
        w, state, T = self._window, self.state, self.T
        now = time.time()
        tps = w["tokens"] / max(now - w["time"], 1e-9)
        loss = w["loss_sum"] / max(w["loss_n"], 1)
        step, elapsed = state["step"], state["elapsed"]
        parts = [f"step {step:>6}" + (f"/{T.max_steps}" if T.max_steps else "")]
        if T.max_steps or T.max_tokens or T.max_seconds:
            frac = max(budget_progress(T.max_steps, T.max_tokens, step, state["tokens"]) or 0.0,
                       min(1.0, elapsed / T.max_seconds) if T.max_seconds else 0.0)
            parts.append(f"[{'#' * int(20 * frac):<20}] {frac:4.0%}")
        label = "loss (sampled)" if self.settings.softmax.type == "sampled" else "loss"
        parts.append(f"{label} {loss:.3f}  ppl {math.exp(min(loss, 50.0)):.1f}")
        if T.lr_schedule != "constant" or T.warmup_steps:
            parts.append(f"lr {self._lr:.2e}")
        parts.append(f"{tps:,.0f} tok/s")
        parts.append(f"elapsed {_fmt_time(elapsed)}")
        # time left by each limit, at this process's own rate (earlier runs of a resumed output excluded)
        spent, remaining = now - self._first["time"], []
        for limit, done, first in ((T.max_steps, step, self._first["step"]), (T.max_tokens, state["tokens"], self._first["tokens"])):
            if limit and done > first:
                remaining.append(spent / (done - first) * max(0, limit - done))
        if T.max_seconds:
            remaining.append(T.max_seconds - elapsed)
        if remaining:
            parts.append(f"eta {_fmt_time(min(remaining))}")
        self.say("  ".join(parts))
        self.log_event("train", step=step, epoch=state["epoch"], loss=loss, perplexity=math.exp(min(loss, 50.0)),
                       tokens_per_second=tps, grad_norm=grad_norm, tokens=state["tokens"], elapsed=elapsed,
                       learning_rate=self._lr)
        self._window = {"time": now, "tokens": 0, "loss_sum": 0.0, "loss_n": 0}

    def _diverged(self, step: int, loss: float, grad_norm: float) -> None:
        last = self._last_ckpt_step
        kept = (f"the last good checkpoint (step {last}) in {ckpt.checkpoint_path(self.output)} is kept"
                if last >= 0 else "no checkpoint had been written yet")
        message = (f"Training diverged: loss {loss} / gradient norm {grad_norm} is not finite at step {step + 1}. "
                   f"Stopped without applying that update; {kept}. Lower training.learning_rate, set "
                   f"training.grad_clip, or use precision fp32.")
        self.log_event("error", step=step, message=message)
        raise NonFiniteLossError(message)


def pretrain(config: Config, output_dir: PathLike, gpu_id: int = -1, resume: bool = False,
             stdout: Callable[[str], None] = print, overwrite: bool = False) -> Dict[str, Any]:
    """Train a biLM as configured and export it to output_dir. Returns the final metrics (rank 0).
    An output_dir holding options.json, weights.hdf5 or vocab.txt but no checkpoint is refused unless
    overwrite=True."""
    return Run(config, output_dir, gpu_id=gpu_id, resume=resume, stdout=stdout, overwrite=overwrite).run()


__all__ = ["pretrain", "PretrainError", "NonFiniteLossError", "PretrainInterrupted", "LanguageModel", "Run"]
