"""`spacy elmo init-config ner|textcat|pretrain OUTPUT [--weights DIR] [--size small|full] [--gpu] [--force]`

Writes a starting config from the ones shipped in the package (spacy_elmo/configs in a wheel, the repository's
configs/ in a checkout), keeping their comments, with the settings the options decide filled in.
"""
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

from .app import app
from .errors import VERBOSE_ENV, friendly_errors

KINDS = ("ner", "textcat", "pretrain")
SIZES = ("small", "full")
TASK_CONFIGS = {"ner": "ner_elmo.cfg", "textcat": "textcat_elmo.cfg"}
# (size, gpu) -> the pretraining config; --weights continues that biLM instead (pretrain_adapt.cfg)
PRETRAIN_CONFIGS = {("small", False): "pretrain_small.cfg", ("small", True): "pretrain_gpu.cfg",
                    ("full", False): "pretrain_full.cfg", ("full", True): "pretrain_full.cfg"}
ADAPT_CONFIG = "pretrain_adapt.cfg"


class InitConfigError(ValueError):
    """A problem with init-config's options or output, stated for the user."""


def configs_dir() -> Path:
    """The shipped configs: spacy_elmo/configs in an installed wheel (mapped from configs/ at build time), the
    repository's configs/ when spacy_elmo runs from a checkout (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / TASK_CONFIGS["ner"]).is_file():
            return candidate
    raise InitConfigError(f"the shipped configs are missing from {package}; reinstall spacy-elmo (pip install "
                          "--force-reinstall spacy-elmo).")


def set_value(text: str, section: str, key: str, value: Any) -> str:
    """`text` with `key = ...` of [section] set to `value` (JSON, as spaCy's config format writes values);
    every other line, comments included, as it was."""
    lines = text.splitlines(keepends=True)
    current = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
        elif current == section and stripped.split("=", 1)[0].strip() == key and "=" in stripped:
            lines[i] = f"{key} = {json.dumps(value)}\n"
            return "".join(lines)
    raise InitConfigError(f"the shipped config has no {section}.{key}; reinstall spacy-elmo.")


def _weights_dir(weights: Path) -> Path:
    from ..loading import weights_dir_problem

    problem = weights_dir_problem(weights)
    if problem is not None:
        raise InitConfigError(f"--weights: {problem}.")
    return weights.resolve()


def _architecture(options: Any, source: str) -> str:
    """What the biLM of `options` (BiLMOptions) is, with its parameter count (the softmax not included)."""
    import torch

    from ..bilm import BiLM

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        n_params = sum(p.numel() for p in BiLM(options).parameters())
    return (f"architecture: {source}: LSTM {options.lstm_dim}, projection {options.projection_dim}, "
            f"{options.n_layers} layers, {options.n_filters} char-CNN filters, {options.n_highway} highway; "
            f"{n_params:,} parameters in the biLM (the softmax adds vocabulary x "
            f"{options.projection_dim} more)")


def _model_options(text: str) -> Any:
    from thinc.api import Config

    from ..bilm.options import BiLMOptions

    model = dict(Config().from_str(text, interpolate=False)["model"])
    model.pop("dropout", None)
    return BiLMOptions(**model)


def build_config(kind: str, weights: Optional[Path] = None, size: Optional[str] = None,
                 gpu: bool = False) -> Tuple[str, List[str]]:
    """The config text for `kind` and the lines to tell the user (what was chosen, what to run next)."""
    if kind not in KINDS:
        raise InitConfigError(f"unknown config {kind!r}; choose one of {', '.join(KINDS)}.")
    if size is not None and size not in SIZES:
        raise InitConfigError(f"--size must be one of {', '.join(SIZES)}, got {size!r}.")
    gpu_flag = " --gpu-id 0" if gpu else ""
    if kind in TASK_CONFIGS:
        if size is not None:
            raise InitConfigError(f"--size chooses the biLM to pretrain; a {kind} config takes the biLM from --weights.")
        name = TASK_CONFIGS[kind]
        text = (configs_dir() / name).read_text(encoding="utf8")
        notes = [f"{kind}: {name}, frozen ELMo features mixed per task (the same config on CPU and GPU)"]
        weights_arg = ""
        if weights is not None:
            text = set_value(text, "paths", "elmo_weights", str(_weights_dir(weights)))
        else:
            weights_arg = " --paths.elmo_weights DIR"
            notes.append("no --weights: give the biLM directory (options.json + weights.hdf5) when you train")
        notes.append(f"next: spacy train OUTPUT --paths.train train.spacy --paths.dev dev.spacy{weights_arg}{gpu_flag}")
        return text, notes
    if weights is not None:
        if size is not None:
            raise InitConfigError("--weights continues that biLM, whose options.json sets the architecture; drop --size.")
        from ..bilm.options import BiLMOptions

        directory = _weights_dir(weights)
        text = set_value((configs_dir() / ADAPT_CONFIG).read_text(encoding="utf8"), "paths", "init_from", str(directory))
        options = BiLMOptions.from_file(directory / "options.json")
        notes = [_architecture(options, f"{directory}'s options.json (continued on your text: {ADAPT_CONFIG})")]
    else:
        name = PRETRAIN_CONFIGS[(size or "small", gpu)]
        text = (configs_dir() / name).read_text(encoding="utf8")
        notes = [_architecture(_model_options(text), f"{size or 'small'}{' for a GPU' if gpu else ''} ({name})")]
        if size == "full" and not gpu:
            notes.append("the full size needs GPUs: tens of seconds a step on a CPU (add --gpu)")
    for key in ("train", "dev"):  # the shipped ones point at the demo's corpus
        text = set_value(text, "paths", key, None)
    notes.append(f"next: spacy elmo pretrain OUTPUT --output DIR --paths.train TRAIN --paths.dev DEV{gpu_flag}")
    return text, notes


def write_config(text: str, output: Path, force: bool = False) -> None:
    """Write `text` to `output` whole (a temporary file renamed into place); an existing file only with force."""
    from ..bilm.atomic import new_file_mode

    if output.is_dir():
        raise InitConfigError(f"{output} is a directory; give a file name such as {output / 'config.cfg'}.")
    if not output.resolve().parent.is_dir():
        raise InitConfigError(f"{output.resolve().parent} does not exist; create it first or choose another output.")
    if output.exists() and not force:
        raise InitConfigError(f"{output} exists; pass --force to replace it, or choose another name.")
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf8") as f:
            f.write(text)
        os.chmod(tmp, new_file_mode())
        if force:
            os.replace(tmp, output)
        else:
            try:
                os.link(tmp, output)  # fails if a file appeared meanwhile: never replaced without --force
            except FileExistsError:
                raise InitConfigError(f"{output} exists; pass --force to replace it, or choose another name.") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@app.command("init-config")
def init_config_cli(
    kind: str = typer.Argument(..., help="ner, textcat or pretrain", metavar="ner|textcat|pretrain"),
    output: str = typer.Argument(..., help="Config file to write; - for stdout"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="biLM directory (options.json + weights.hdf5): the "
                                           "features for ner/textcat; for pretrain, the biLM to continue training"),
    size: Optional[str] = typer.Option(None, "--size", help="pretrain: small (a CPU's, default) or full (the original "
                                       "ELMo's, for GPUs)"),
    gpu: bool = typer.Option(False, "--gpu", help="Train on a GPU: pretrain gets a GPU-sized biLM; the next command "
                             "printed uses --gpu-id 0"),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT if it exists"),
    verbose: bool = typer.Option(False, "--verbose", help=f"Show the traceback of an error (or set {VERBOSE_ENV}=1)"),
) -> None:
    """Write a ready config for `spacy train` (ner, textcat) or `spacy elmo pretrain` (pretrain)."""
    with friendly_errors(verbose):
        text, notes = build_config(kind, weights, size, gpu)
        if output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_config(text, Path(output), force)
            notes.insert(0, f"wrote {output}")
        for note in notes:
            print(note.replace("OUTPUT", "CONFIG" if output == "-" else output), file=sys.stderr)


__all__ = ["build_config", "write_config", "configs_dir", "set_value", "InitConfigError", "KINDS", "SIZES"]
