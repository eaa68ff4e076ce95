"""`python -m spacy_elmo embed`: the job of AllenNLP's old `allennlp elmo` command.

One sentence per "\n"-terminated line (whitespace tokens, or a spaCy tokenizer with --spacy); writes OUTPUT.hdf5
with a dataset per line, keys "0", "1", ... and a "sentence_to_index" dataset (JSON: sentence -> key), as
AllenNLP. Blank lines give empty entries. Stateless biLM, so the output does not depend on batch size or order.
"""
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import h5py
import numpy
import typer
from tqdm import tqdm

from ..bilm.precision import PRECISIONS
from .app import app
from .errors import VERBOSE_ENV, describe_os_error, friendly_errors
from .hdf5_output import DiskFile, remove_stale_temp_files, write_hdf5_atomically

try:
    import resource
except ImportError:  # not on Windows: no file-size limit to check there
    resource = None  # type: ignore[assignment]

MODES = ("all", "top", "average")


class EmbedError(ValueError):
    """A problem with embed's input, output or options, stated for the user (no traceback)."""


def _tokenizer(spacy_model: Optional[str]) -> Callable[[str], List[str]]:
    if not spacy_model:
        return str.split
    import spacy

    try:
        nlp = spacy.load(spacy_model, exclude=["elmo"])
    except OSError:
        try:
            nlp = spacy.blank(spacy_model)  # a language code such as "en"
        except (ImportError, ValueError, KeyError) as err:
            raise EmbedError(f"--spacy {spacy_model!r} is neither an installed spaCy pipeline nor a language code such as 'en'.") from err
    return lambda line: [token.text for token in nlp.make_doc(line) if not token.is_space]


def _reduce(layers: numpy.ndarray, mode: str) -> numpy.ndarray:
    if mode == "top":
        return layers[-1]
    if mode == "average":
        return layers.mean(0)
    return layers


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def check_output(output_file: Path, protected: Sequence[Path]) -> None:
    """Refuse an output that cannot be written, or that is one of the files this run reads."""
    output_file = Path(output_file)
    if output_file.is_dir():
        raise EmbedError(f"output {output_file} is a directory; give a file name such as {output_file / 'elmo.hdf5'}.")
    parent = output_file.resolve().parent
    if not parent.is_dir():
        raise EmbedError(f"the output's directory {parent} does not exist; create it first or choose another output.")
    for path in protected:
        if _same_file(output_file, Path(path)):
            raise EmbedError(f"output {output_file} is the same file as {path}, which this command reads; choose another output file.")


def _read_lines(input_file: Path) -> List[str]:
    """One entry per "\n"-terminated line, as AllenNLP's layout: a form feed or U+2028 inside a line stays
    in that line (str.splitlines would split there and shift every later key). A CRLF's "\r" is dropped."""
    try:
        data = Path(input_file).read_bytes()
    except OSError as err:
        raise EmbedError(f"cannot read input {input_file}: {err.strerror or err}.") from err
    if b"\0" in data:
        raise EmbedError(f"input {input_file} contains NUL bytes: it looks binary, not text with one sentence per line.")
    try:
        text = data.decode("utf8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise EmbedError(f"input {input_file} is not UTF-8 (line {line}, byte {err.start}); convert it, e.g. iconv -t utf-8.") from err
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":  # the last line's own terminator, not one more empty line
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _check_space(output_file: Path, needed: int) -> None:
    """Refuse before the biLM runs when the vectors alone cannot fit (free space or `ulimit -f`)."""
    free = shutil.disk_usage(output_file.resolve().parent).free
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
    if needed > free:
        raise EmbedError(f"cannot write {output_file}: the vectors need at least {_size(needed)} and its disk has "
                         f"{_size(free)} free; free some space, write to another disk, or use --top/--average "
                         "(1/L the size).")
    if 0 <= limit < needed:
        raise EmbedError(f"cannot write {output_file}: the vectors need at least {_size(needed)} and this process may "
                         f"write files of at most {_size(limit)} (ulimit -f); raise the limit or use --top/--average "
                         "(1/L the size).")


def embed_file(
    weights_dir: Path,
    input_file: Path,
    output_file: Path,
    mode: str = "all",
    batch_size: int = 64,
    spacy_model: Optional[str] = None,
    progress: bool = True,
    precision: str = "float32",
) -> int:
    """Returns the number of lines written. The output is written to a hidden temporary file next to it
    (.NAME.HOST-PID-XXXXXX.tmp) and renamed over output_file only when complete: a failed, interrupted or
    terminated run leaves any earlier output_file as it was and removes its temporary file; what a killed
    run leaves is removed by the next run into the same directory."""
    from ..loading import ALL_WEIGHT_FILES, load_weights_dir

    if mode not in MODES:
        raise EmbedError(f"mode must be one of {MODES}, got {mode!r}")
    if batch_size < 1:
        raise EmbedError(f"--batch-size must be at least 1, got {batch_size}.")
    output_file = Path(output_file)
    check_output(output_file, [Path(input_file), *(Path(weights_dir) / name for name in ALL_WEIGHT_FILES)])
    if precision not in PRECISIONS:
        raise EmbedError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    for stale in remove_stale_temp_files(output_file):  # first: their space counts as free below
        print(f"removed {stale}, left by an earlier run that was killed", file=sys.stderr)
    bilm = load_weights_dir(weights_dir)
    bilm.set_precision(precision)  # an unsupported one warns, naming the CPU feature, and runs float32
    lines = _read_lines(input_file)
    tokenize = _tokenizer(spacy_model)
    sentences = [tokenize(line) for line in lines]
    L, D = bilm.n_outputs, bilm.output_dim
    _check_space(output_file, 4 * D * (L if mode == "all" else 1) * sum(map(len, sentences)))
    chunk = batch_size * 8  # embed_sentences sorts by length within each chunk

    def write(fout: h5py.File, disk: DiskFile) -> None:
        sentence_to_index: Dict[str, str] = {}
        # stderr keeps stdout for data; the bar closes (with its newline) before any error message
        bar = tqdm(total=len(sentences), desc="embed", unit=" sentences", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        with bar:
            _write_chunks(fout, disk, bar, sentence_to_index)
        fout.create_dataset("sentence_to_index", data=[json.dumps(sentence_to_index)])

    def _write_chunks(fout: h5py.File, disk: DiskFile, bar: tqdm, sentence_to_index: Dict[str, str]) -> None:
        for start in range(0, len(sentences), chunk):
            part = sentences[start : start + chunk]
            nonempty = [i for i, s in enumerate(part) if s]
            vectors = bilm.embed_sentences([part[i] for i in nonempty], batch_size=batch_size)
            by_row = dict(zip(nonempty, vectors))
            for i in range(len(part)):
                layers = by_row.get(i, numpy.zeros((L, 0, D), dtype="float32"))
                key = str(start + i)
                fout.create_dataset(key, data=_reduce(layers, mode).astype("float32"))
                sentence_to_index[lines[start + i]] = key
                disk.check()  # a signal that came during HDF5's I/O
            fout.flush()
            disk.check()  # stop at the first failed write, not after the whole input
            bar.update(len(part))

    try:
        write_hdf5_atomically(output_file, write)
    except OSError as err:  # a full disk, a read-only directory: the earlier output (if any) is untouched
        err.filename = err.filename2 = None  # it names the temporary file, which is gone
        kept = f"; the earlier {output_file.name} is unchanged" if output_file.exists() else ""
        raise EmbedError(f"cannot write {output_file}: {describe_os_error(err)} Nothing was written{kept}.") from err
    return len(sentences)


@app.command("embed")
def embed_cli(
    weights_dir: Path = typer.Argument(..., help="Directory with options.json + weights.hdf5"),
    input_file: Path = typer.Argument(..., help="Text file, one sentence per line"),
    output_file: Path = typer.Argument(..., help="Output .hdf5"),
    all_layers: bool = typer.Option(False, "--all", help="Store all layers (n_layers+1, n, D) (default)"),
    top: bool = typer.Option(False, "--top", help="Store the top layer (n, D)"),
    average: bool = typer.Option(False, "--average", help="Store the mean of the layers (n, D)"),
    batch_size: int = typer.Option(64, "--batch-size", help="Sentences per biLM batch"),
    spacy_model: Optional[str] = typer.Option(None, "--spacy", help="Tokenize with this spaCy pipeline or language code"),
    precision: str = typer.Option("float32", "--precision", help="biLM inference precision: float32 (exact), bfloat16 or int8"),
    verbose: bool = typer.Option(False, "--verbose", help=f"Show the traceback of an error (or set {VERBOSE_ENV}=1)"),
) -> None:
    """Embed every line of INPUT with ELMo into OUTPUT.hdf5 (AllenNLP `elmo` command layout)."""
    chosen = [m for m, flag in zip(MODES, (all_layers, top, average)) if flag]
    with friendly_errors(verbose):
        if len(chosen) > 1:
            raise EmbedError(f"choose at most one of --all, --top, --average (got {', '.join('--' + m for m in chosen)}).")
        if not Path(input_file).is_file():
            raise EmbedError(f"input file not found: {input_file}; give a text file with one sentence per line.")
        n = embed_file(weights_dir, input_file, output_file, chosen[0] if chosen else "all", batch_size, spacy_model,
                       precision=precision)
    print(f"wrote {n} entries to {output_file}", file=sys.stderr)
