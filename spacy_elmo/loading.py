"""The files the `elmo` pipe's weights travel in: a directory (or bytes) in bilm-tf's interchange layout,
options.json + weights.hdf5, or an ELMoForManyLangs model directory (told apart by bilm/formats.py), checked
before use, and the pipe's saved settings.

Read by the registered weights loader (layers/loaders.py, run by `nlp.initialize()` / `spacy train`), by the
pipe's `weights` setting, and by a saved pipeline's from_disk / from_bytes.
"""
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

import srsly

from .bilm import BiLM, OptionsError, WeightFileError
from .bilm.formats import BILM_TF, FILES, MANYLANGS, detect_format, load_bilm_dir, save_bilm_dir
from .bilm.manylangs import WORD_DIC

OPTIONS_FILE = "options.json"
WEIGHTS_FILE = "weights.hdf5"
BILM_FILES = (OPTIONS_FILE, WEIGHTS_FILE)
# Every name a saved biLM of either format may have (a saved pipe or its bytes hold one format's set).
WEIGHT_FILE_SETS = tuple(FILES.values())
ALL_WEIGHT_FILES = tuple(dict.fromkeys(name for names in WEIGHT_FILE_SETS for name in names))
# What a saved biLM of each format cannot do without (word.dic only comes with a word embedding).
REQUIRED_FILES = {BILM_TF: FILES[BILM_TF], MANYLANGS: tuple(n for n in FILES[MANYLANGS] if n != WORD_DIC)}
DTYPES = ("float16", "float32")


class ElmoWeightsError(ValueError):
    """The weights cannot be found or read; the message names the place and the fix."""


def weights_dir_problem(path: Union[str, Path, None]) -> Optional[str]:
    """Why `path` is not a usable weights directory (None when it looks usable). Only file names are
    checked here: cheap enough for config validation, the content is checked when it is read."""
    if path is None or str(path) in ("", "None", "null"):
        return f"no weights directory is set; it must be a directory holding {OPTIONS_FILE} and {WEIGHTS_FILE}"
    return detect_format(path)[1]


def missing_weight_files(names: Iterable[str]) -> List[str]:
    """The files a set of saved names lacks to be one complete biLM, of the format its names point to."""
    names = set(names)
    manylangs = names & (set(FILES[MANYLANGS]) - set(FILES[BILM_TF]))
    return [n for n in REQUIRED_FILES[MANYLANGS if manylangs else BILM_TF] if n not in names]


def load_weights_dir(weights: Union[str, Path, None]) -> BiLM:
    """The biLM in `weights` (options.json + weights.hdf5, or an ELMoForManyLangs model), every file checked
    before use."""
    problem = weights_dir_problem(weights)
    if problem is not None:
        raise ElmoWeightsError(problem + ".")
    path = Path(weights)  # type: ignore[arg-type]
    try:
        return load_bilm_dir(path)
    except (OptionsError, WeightFileError) as err:
        raise ElmoWeightsError(f"Cannot load ELMo weights from {path}: {err}") from err


def bilm_to_files(bilm: BiLM) -> Dict[str, bytes]:
    """The files of `bilm` as bytes, in its own format (options.json + weights.hdf5, or an ELMoForManyLangs
    model's files)."""
    with tempfile.TemporaryDirectory() as tmp:
        return {name: (Path(tmp) / name).read_bytes() for name in save_bilm_dir(bilm, tmp)}


def bilm_from_files(files: Dict[str, bytes]) -> BiLM:
    """The inverse of bilm_to_files. The files are written under our own names only, so no key of a
    crafted mapping can become a path; the caller checks which keys are allowed."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ALL_WEIGHT_FILES:
            if name in files:
                (Path(tmp) / name).write_bytes(files[name])
        return load_weights_dir(tmp)


def read_saved_cfg(path: Path) -> Dict:
    """The settings a saved pipe restores (mix and storage dtype), checked like the constructor checks
    them: the file may have been edited by hand."""
    try:
        cfg = srsly.read_json(path)
    except ValueError as err:
        raise ElmoWeightsError(f"{path} is not valid JSON ({err}); it holds the saved 'elmo' settings.") from err
    if not isinstance(cfg, dict):
        raise ElmoWeightsError(f"{path} must hold a JSON object of the 'elmo' settings, not {type(cfg).__name__}.")
    saved = {k: cfg[k] for k in ("mix_weights", "mix_gamma", "dtype") if k in cfg}
    problems = []
    if "dtype" in saved and saved["dtype"] not in DTYPES:
        problems.append(f"dtype is {saved['dtype']!r}; it must be one of {', '.join(DTYPES)}")
    mix = saved.get("mix_weights")
    if mix is not None and not (isinstance(mix, list) and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in mix)):
        problems.append(f"mix_weights is {mix!r}; it must be null or a list of numbers, one per layer")
    gamma = saved.get("mix_gamma", 1.0)
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool):
        problems.append(f"mix_gamma is {gamma!r}; it must be a number")
    if problems:
        raise ElmoWeightsError(f"{path}: " + "; ".join(problems) + ". Fix the file or save the pipeline again.")
    return saved
