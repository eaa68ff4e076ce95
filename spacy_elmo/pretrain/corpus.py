"""Streamed corpus reading and token-budget batching for biLM pretraining.

A corpus is a file or a directory of files (read in sorted order). Formats:
  lines  one sentence per line, whitespace-tokenised (bilm-tf's training format)
  text   raw text, one paragraph/document per line; sentence-split and tokenised with a spaCy pipeline
  jsonl  {"text": ...} (tokenised by spaCy) or {"tokens": [...]} / {"words": [...]} per line
  spacy  DocBin (.spacy): the docs' own tokens and sentences (a sentencizer runs if no boundaries are set)
  auto   by extension: .jsonl -> jsonl, .spacy -> spacy, anything else -> lines
Nothing is loaded whole: files are read line by line (DocBins doc by doc). Blank lines and lines that
are not valid UTF-8 are skipped and counted in CorpusStats.
"""
import json
import random
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Union

PathLike = Union[str, Path]
FORMATS = ("auto", "lines", "text", "jsonl", "spacy")


@dataclass
class CorpusStats:
    files: int = 0
    lines: int = 0
    sentences: int = 0
    tokens: int = 0
    blank: int = 0
    undecodable: int = 0
    malformed: int = 0
    long_split: int = 0  # sentences longer than max_length, cut into pieces

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class CorpusError(ValueError):
    pass


def corpus_files(path: PathLike) -> List[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise CorpusError(f"Corpus directory {path} contains no files.")
        return files
    raise CorpusError(f"Corpus not found: {path}. Give a file or a directory of files.")


def check_corpus(path: PathLike, fmt: str, spacy_model: str) -> None:
    """What can be known about a corpus without reading it through: its files exist and open, and the spaCy
    pipeline its formats need is there. Run before a run writes anything, so a typo costs nothing."""
    files = corpus_files(path)
    for file in files:
        try:
            with file.open("rb") as fin:
                fin.read(1)
        except OSError as err:
            raise CorpusError(f"Cannot read the corpus file {file}: {err.strerror or err}. Make it readable, or "
                              "leave it out of the corpus.") from err
    if any(_format_of(file, fmt) != "lines" for file in files):
        check_spacy_model(spacy_model)


def check_spacy_model(name: str) -> None:
    """corpus.spacy_model names an installed pipeline, a pipeline directory or "blank:LANG" of a language spaCy has."""
    import spacy

    if name.startswith("blank:"):
        lang = name.split(":", 1)[1]
        try:
            spacy.util.get_lang_class(lang)
        except (ImportError, KeyError, ValueError) as err:
            raise CorpusError(f"corpus.spacy_model = {name!r}: spaCy has no language {lang!r}. Use a language code "
                              "spaCy knows, e.g. \"blank:en\".") from err
    elif not (spacy.util.is_package(name) or Path(name).is_dir()):
        raise CorpusError(f"corpus.spacy_model = {name!r} is neither an installed spaCy pipeline nor a directory. "
                          f"Install it (python -m spacy download {name}) or use \"blank:LANG\", e.g. \"blank:en\".")


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.suffix == ".spacy":
        return "spacy"
    return "lines"


class Corpus:
    """Iterating yields token lists, one per sentence, streamed from disk; stats counts what was skipped."""

    def __init__(self, path: PathLike, fmt: str = "auto", max_length: int = 0, spacy_model: str = "blank:en") -> None:
        if fmt not in FORMATS:
            raise CorpusError(f"Unknown corpus format {fmt!r}; use one of {', '.join(FORMATS)}.")
        self.path, self.fmt, self.max_length, self.spacy_model = Path(path), fmt, int(max_length), spacy_model
        self.files = corpus_files(path)
        self.stats = CorpusStats()
        self._nlp = None

    # spaCy is imported only for formats that need it.
    def nlp(self):
        if self._nlp is None:
            import spacy

            if self.spacy_model.startswith("blank:"):
                nlp = spacy.blank(self.spacy_model.split(":", 1)[1])
            else:
                nlp = spacy.load(self.spacy_model, exclude=["ner", "lemmatizer", "textcat"])
            if not any(nlp.has_pipe(p) for p in ("sentencizer", "parser", "senter")):
                nlp.add_pipe("sentencizer")
            self._nlp = nlp
        return self._nlp

    def _lines(self, path: Path) -> Iterator[str]:
        with path.open("rb") as fin:
            for raw in fin:
                self.stats.lines += 1
                try:
                    line = raw.decode("utf8").strip()
                except UnicodeDecodeError:
                    self.stats.undecodable += 1
                    continue
                if not line:
                    self.stats.blank += 1
                    continue
                yield line

    def _docs_sentences(self, docs: Iterable) -> Iterator[List[str]]:
        for doc in docs:
            for sent in doc.sents:
                tokens = [t.text for t in sent if not t.is_space]
                if tokens:
                    yield tokens

    def _texts_to_sentences(self, texts: Iterable[str]) -> Iterator[List[str]]:
        yield from self._docs_sentences(self.nlp().pipe(texts, batch_size=256))

    def _jsonl(self, path: Path) -> Iterator[List[str]]:
        texts: List[str] = []
        for line in self._lines(path):
            try:
                record = json.loads(line)
            except ValueError:
                self.stats.malformed += 1
                continue
            tokens = record.get("tokens", record.get("words")) if isinstance(record, dict) else None
            if isinstance(tokens, list):
                if texts:
                    yield from self._texts_to_sentences(texts)
                    texts = []
                tokens = [t["text"] if isinstance(t, dict) else str(t) for t in tokens]
                tokens = [t for t in tokens if t.strip()]
                if tokens:
                    yield tokens
            elif isinstance(record, dict) and isinstance(record.get("text"), str):
                texts.append(record["text"])
                if len(texts) >= 256:
                    yield from self._texts_to_sentences(texts)
                    texts = []
            else:
                self.stats.malformed += 1
        if texts:
            yield from self._texts_to_sentences(texts)

    def _spacy(self, path: Path) -> Iterator[List[str]]:
        from spacy.tokens import DocBin

        nlp = self.nlp()
        docs = DocBin().from_disk(path).get_docs(nlp.vocab)
        for doc in docs:
            if not (doc.has_annotation("SENT_START")):
                doc = nlp.get_pipe("sentencizer")(doc) if nlp.has_pipe("sentencizer") else doc
            yield from self._docs_sentences([doc])

    def _raw_sentences(self) -> Iterator[List[str]]:
        for path in self.files:
            self.stats.files += 1
            fmt = _format_of(path, self.fmt)
            try:
                yield from self._file_sentences(path, fmt)
            except (OSError, ValueError, zlib.error) as err:  # unreadable, or not the format it claims to be
                if isinstance(err, CorpusError):
                    raise
                raise CorpusError(f"Cannot read the corpus file {path} as {fmt!r} (corpus.format): "
                                  f"{str(getattr(err, 'strerror', None) or err).rstrip('.')}. Fix or remove the file, or set "
                                  "corpus.format to its format.") from err

    def _file_sentences(self, path: Path, fmt: str) -> Iterator[List[str]]:
        if fmt == "lines":
            for line in self._lines(path):
                yield line.split()
        elif fmt == "text":
            yield from self._texts_to_sentences(self._lines(path))
        elif fmt == "jsonl":
            yield from self._jsonl(path)
        else:
            yield from self._spacy(path)

    def __iter__(self) -> Iterator[List[str]]:
        self.stats = CorpusStats()
        n = self.max_length
        for tokens in self._raw_sentences():
            pieces = [tokens] if not n or len(tokens) <= n else [tokens[i : i + n] for i in range(0, len(tokens), n)]
            if len(pieces) > 1:
                self.stats.long_split += 1
            for piece in pieces:
                self.stats.sentences += 1
                self.stats.tokens += len(piece)
                yield piece


def batches_by_tokens(
    sentences: Iterable[List[str]],
    batch_tokens: int,
    seed: int,
    buffer_size: int = 20000,
    shuffle: bool = True,
    max_batch_size: int = 0,
) -> Iterator[List[List[str]]]:
    """Group a sentence stream into batches of at most batch_tokens padded tokens (boundaries included).

    Reads buffer_size sentences at a time, shuffles them (deterministically from seed), sorts the buffer by
    length so that batches have little padding, cuts it into batches and shuffles the batch order.
    The sequence of batches is a pure function of (corpus, batch_tokens, seed, buffer_size): resuming at
    batch k is re-running the stream and skipping k batches."""
    rng = random.Random(seed)
    buffer: List[List[str]] = []
    warned = False

    def flush() -> Iterator[List[List[str]]]:
        nonlocal warned
        if shuffle:
            rng.shuffle(buffer)
        buffer.sort(key=len)
        if not warned and buffer and len(buffer[-1]) + 2 > batch_tokens:
            # Such a sentence is a batch of its own, over the budget that was meant to bound memory.
            warned = True
            warnings.warn(
                f"A sentence of {len(buffer[-1]):,} tokens is longer than training.batch_tokens = {batch_tokens:,}: "
                "it forms a batch of its own, over that budget (and over the memory it was meant to bound). "
                "Set corpus.max_length to cut long sentences into pieces.",
                stacklevel=2,
            )
        batches: List[List[List[str]]] = []
        current: List[List[str]] = []
        for sent in buffer:
            width = len(sent) + 2
            if current and ((len(current) + 1) * width > batch_tokens or (max_batch_size and len(current) >= max_batch_size)):
                batches.append(current)
                current = []
            current.append(sent)
        if current:
            batches.append(current)
        if shuffle:
            rng.shuffle(batches)
        buffer.clear()
        yield from batches

    for sent in sentences:
        buffer.append(sent)
        if len(buffer) >= buffer_size:
            yield from flush()
    if buffer:
        yield from flush()


def take(sentences: Iterable[List[str]], n: int) -> List[List[str]]:
    out: List[List[str]] = []
    for sent in sentences:
        if n and len(out) >= n:
            break
        out.append(sent)
    return out


__all__ = ["Corpus", "CorpusStats", "CorpusError", "batches_by_tokens", "corpus_files", "check_corpus",
           "check_spacy_model", "take", "FORMATS"]
