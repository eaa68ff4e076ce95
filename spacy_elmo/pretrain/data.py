"""A run's data: its inputs checked before anything is written, the vocabulary, the dev set, and this
process's stream of training batches from the saved position on."""
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple, Union

from .config import Settings
from .corpus import Corpus, batches_by_tokens, check_corpus, take
from .dev_set import dev_digest
from .distributed import DistContext
from .errors import PretrainError
from .progress import Progress
from .state import TrainingState
from .vocab import Vocab, build_vocab

Batch = List[List[str]]


@dataclass(frozen=True)
class DevSet:
    sentences: List[List[str]]
    digest: str  # which dev text an evaluation was made on (dev_set.py)
    batches: List[Batch]


def check_inputs(settings: Settings, output: Path) -> Optional[Vocab]:
    """paths.train, paths.dev and paths.vocab usable, and --output outside the corpus; paths.vocab's vocabulary."""
    paths, c = settings.paths, settings.corpus
    if not paths.train:
        raise PretrainError("No training corpus: set paths.train in the config or pass --paths.train PATH.")
    for key in ("train", "dev", "vocab"):
        value = getattr(paths, key)
        if value and not Path(value).exists():
            raise PretrainError(f"paths.{key} does not exist: {value}")
    for key in ("train", "dev"):
        if getattr(paths, key):  # an empty directory or a missing spaCy pipeline: an error now, before --output is touched
            check_corpus(getattr(paths, key), c.format, c.spacy_model)
    out = output.resolve()
    for key in ("train", "dev"):
        value = getattr(paths, key)
        if value and Path(value).is_dir() and (out == Path(value).resolve() or Path(value).resolve() in out.parents):
            raise PretrainError(
                f"--output {output} is inside the corpus directory paths.{key} = {value}: the run's own files "
                "(config.cfg, vocab.txt, logs) would be read as text. Choose an --output outside it."
            )
    if not paths.vocab:
        return None
    try:
        return Vocab.from_file(paths.vocab)
    except (OSError, ValueError) as err:
        raise PretrainError(f"paths.vocab {paths.vocab}: {str(err).rstrip('.')}. It must be a UTF-8 text file with one "
                            "token per line (bilm-tf's vocab.txt), or set paths.vocab = null to build the vocabulary "
                            "from paths.train.") from err


def open_corpus(settings: Settings, path: Union[str, Path]) -> Corpus:
    c = settings.corpus
    return Corpus(path, fmt=c.format, max_length=c.max_length, spacy_model=c.spacy_model)


def make_vocab(settings: Settings, output: Path, resuming: bool, vocab_file: Optional[Vocab], state: TrainingState,
               progress: Progress) -> Vocab:
    """The LM's targets: a resumed run's own vocab.txt, paths.vocab's, or the top of the training corpus."""
    paths, v = settings.paths, settings.vocab
    if resuming and (output / "vocab.txt").is_file():
        return Vocab.from_file(output / "vocab.txt")
    if vocab_file is not None:
        progress.say(f"Vocabulary: {len(vocab_file):,} tokens from {paths.vocab}")
        return vocab_file
    corpus = open_corpus(settings, str(paths.train))
    start = time.time()
    vocab = build_vocab(corpus, max_size=v.max_size, min_count=v.min_count)
    stats = corpus.stats.as_dict()
    state.extra_metrics["train_corpus"] = stats
    progress.say(
        f"Corpus {paths.train}: {stats['sentences']:,} sentences, {stats['tokens']:,} tokens in "
        f"{stats['files']} file(s); skipped {stats['blank']:,} blank and {stats['undecodable']:,} undecodable "
        f"line(s), {stats['malformed']:,} malformed record(s); {stats['long_split']:,} long sentence(s) split "
        f"({time.time() - start:.1f}s)"
    )
    covered = sum(vocab.counts.get(t, 0) for t in vocab.tokens[3:]) if vocab.counts else 0
    progress.say(f"Vocabulary: {len(vocab):,} tokens (top of {len(vocab.counts or {}):,} types, "
                 f"{covered / max(1, stats['tokens']):.1%} of training tokens)")
    progress.log("corpus", split="train", **stats, vocab_size=len(vocab))
    return vocab


def check_cutoffs(settings: Settings, vocab: Vocab) -> None:
    """The adaptive softmax's cutoffs split the vocabulary: one at or beyond its end is a mistake, not a default."""
    s, n = settings.softmax, len(vocab)
    beyond = [c for c in s.cutoffs if c >= n]
    if s.type == "adaptive" and beyond:
        raise PretrainError(
            f"softmax.cutoffs {list(s.cutoffs)}: {', '.join(map(str, beyond))} not below the vocabulary's {n:,} "
            f"tokens. Set cutoffs below {n:,}, or cutoffs = [] for the defaults (5% and 25% of the vocabulary).")


def load_dev_set(settings: Settings, progress: Progress) -> Optional[DevSet]:
    dev = settings.paths.dev
    if not dev:
        return None
    corpus = open_corpus(settings, dev)
    sentences = take(corpus, settings.corpus.dev_max_sentences)
    stats = corpus.stats.as_dict()
    progress.say(f"Dev corpus {dev}: {len(sentences):,} sentences used; skipped {stats['blank']:,} blank and "
                 f"{stats['undecodable']:,} undecodable line(s)")
    batches = list(batches_by_tokens(sentences, settings.training.batch_tokens, seed=0,
                                     buffer_size=max(1, len(sentences)), shuffle=False))
    return DevSet(sentences, dev_digest(sentences), batches) if batches else None


def grouped(iterable: Iterable, n: int) -> Iterator[list]:
    """Consecutive groups of n; an incomplete last group is dropped so every rank does the same steps."""
    it = iter(iterable)
    while True:
        group = list(itertools.islice(it, n))
        if len(group) < n:
            return
        yield group


def training_batches(settings: Settings, state: TrainingState, ctx: DistContext,
                     progress: Progress) -> Iterator[Optional[Tuple[int, Batch]]]:
    """This process's training batches from the saved position on, as (index in the epoch, batch); None after
    each epoch, once state.epoch has advanced. The order is a pure function of the corpus, the seed and the
    epoch, so a resumed run skips exactly the batches the checkpoint had consumed."""
    T = settings.training
    while True:
        epoch, skip = state.epoch, state.batch_in_epoch
        corpus = open_corpus(settings, str(settings.paths.train))
        stream = batches_by_tokens(corpus, T.batch_tokens, seed=T.seed * 7919 + epoch,
                                   buffer_size=settings.corpus.buffer_size, max_batch_size=T.max_batch_size)
        progressed = False
        for index, group in enumerate(grouped(stream, ctx.world_size)):
            if index >= skip:
                progressed = True
                yield index, group[ctx.rank]
        if not progressed and skip == 0:
            raise PretrainError(f"The training corpus {settings.paths.train} yields no batches "
                                f"(empty, or fewer batches than processes).")
        if epoch == 0:
            progress.log("corpus", split="train-epoch", step=state.step, **corpus.stats.as_dict())
        progress.say(f"Epoch {epoch} done at step {state.step}")
        state.epoch = epoch + 1
        state.batch_in_epoch = 0
        yield None


__all__ = ["DevSet", "Batch", "check_inputs", "open_corpus", "make_vocab", "check_cutoffs", "load_dev_set",
           "grouped", "training_batches"]
