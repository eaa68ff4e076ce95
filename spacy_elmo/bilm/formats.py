"""Which checkpoint format a weights directory holds, told from its file names, and one entry point to load
or save either: bilm-tf's interchange layout (weights.py) or an ELMoForManyLangs model (manylangs.py)."""
from pathlib import Path
from typing import Optional, Tuple, Union

from .bilm import BiLM
from .manylangs import CHAR_DIC, CONFIG_FILE, ENCODER_FILE, MANYLANGS_FILES, SAVED_FILES, TOKEN_EMBEDDER_FILE, WORD_DIC
from .manylangs import ManyLangsBiLM, load_manylangs, save_manylangs
from .weights import WeightFileError
from .weights import load_bilm as load_bilm_tf
from .weights import save_bilm as save_bilm_tf

PathLike = Union[str, Path]

BILM_TF = "bilm-tf"
MANYLANGS = "ELMoForManyLangs"
OPTIONS_FILE = "options.json"
WEIGHTS_FILE = "weights.hdf5"
BILM_TF_FILES = (OPTIONS_FILE, WEIGHTS_FILE)
# What marks a directory as ELMoForManyLangs; word.dic is needed only when its config has a word embedding.
MANYLANGS_MARKS = (CONFIG_FILE, CHAR_DIC, TOKEN_EMBEDDER_FILE, ENCODER_FILE)
FILES = {BILM_TF: BILM_TF_FILES, MANYLANGS: SAVED_FILES}
NEEDS = (f"a bilm-tf/AllenNLP biLM needs {OPTIONS_FILE} and {WEIGHTS_FILE}; an ELMoForManyLangs model needs "
         f"{', '.join(MANYLANGS_FILES[:-1])} and {MANYLANGS_FILES[-1]}")


def _found(directory: Path) -> str:
    names = sorted(p.name for p in directory.iterdir())[:8] if directory.is_dir() else []
    return ", ".join(names) + (", ..." if len(names) == 8 else "") if names else "nothing"


def detect_format(directory: PathLike, label: str = "ELMo weights directory") -> Tuple[Optional[str], Optional[str]]:
    """(format, None) for a directory that holds one format's files, else (None, why not) in one line that
    names what is there and what each format needs."""
    directory = Path(directory)
    if not directory.is_dir():
        return None, f"{label} not found: {directory}. It must be a directory holding {OPTIONS_FILE} and {WEIGHTS_FILE}"
    has = {name: (directory / name).is_file() for name in {*BILM_TF_FILES, *MANYLANGS_FILES}}
    bilm_tf = all(has[n] for n in BILM_TF_FILES)
    manylangs = all(has[n] for n in MANYLANGS_MARKS)
    if bilm_tf and manylangs:
        return None, (f"{label} {directory} holds both a bilm-tf biLM ({OPTIONS_FILE}, {WEIGHTS_FILE}) and an ELMoForManyLangs "
                      "model (config.json, *.dic, *.pkl); keep one of them in it")
    if bilm_tf:
        return BILM_TF, None
    if manylangs:
        return MANYLANGS, None
    started_manylangs = any(has[n] for n in (TOKEN_EMBEDDER_FILE, ENCODER_FILE, CHAR_DIC, WORD_DIC))
    if started_manylangs:
        absent = [n for n in MANYLANGS_MARKS if not has[n]]
        return None, (f"{label} {directory} looks like an ELMoForManyLangs model but has no {' or '.join(absent)} "
                      f"(found: {_found(directory)}); {NEEDS}")
    absent = [n for n in BILM_TF_FILES if not has[n]]
    if any(has[n] for n in BILM_TF_FILES):
        return None, f"{label} {directory} has no {' or '.join(absent)}; it needs {OPTIONS_FILE} and {WEIGHTS_FILE}"
    return None, f"{label} {directory} holds no ELMo model (found: {_found(directory)}); {NEEDS}"


def weight_files(directory: PathLike) -> Tuple[Path, ...]:
    """The files a load of `directory` reads (none when it holds no known format)."""
    fmt, _ = detect_format(directory)
    names = BILM_TF_FILES if fmt == BILM_TF else MANYLANGS_FILES if fmt == MANYLANGS else ()
    return tuple(Path(directory) / name for name in names)


def load_bilm_dir(directory: PathLike, stateful: bool = False, char_cache_size: int = 0,
                  precision: str = "float32", strict_precision: bool = False) -> BiLM:
    """The biLM in `directory`, whichever format it holds (told from its files)."""
    fmt, problem = detect_format(directory)
    if fmt is None:
        raise WeightFileError(f"{problem}.")
    directory = Path(directory)
    if fmt == BILM_TF:
        return load_bilm_tf(directory / OPTIONS_FILE, directory / WEIGHTS_FILE, stateful=stateful, char_cache_size=char_cache_size,
                            precision=precision, strict_precision=strict_precision)
    bilm = load_manylangs(directory, stateful=stateful, char_cache_size=char_cache_size)
    bilm.set_precision(precision, strict=strict_precision)
    return bilm


def load_bilm(options_file: PathLike, weight_file: Optional[PathLike] = None, stateful: bool = False, char_cache_size: int = 0,
              precision: str = "float32", strict_precision: bool = False) -> BiLM:
    """load_bilm(options.json, weights.hdf5) reads bilm-tf's files; load_bilm(DIRECTORY) reads a directory of
    either format. `precision` ("float32" exact, "bfloat16", "int8") converts the weights for inference after
    loading; the files are not changed."""
    if weight_file is None:
        return load_bilm_dir(options_file, stateful=stateful, char_cache_size=char_cache_size, precision=precision,
                             strict_precision=strict_precision)
    return load_bilm_tf(options_file, weight_file, stateful=stateful, char_cache_size=char_cache_size, precision=precision,
                        strict_precision=strict_precision)


def save_bilm(bilm: BiLM, directory: PathLike) -> Path:
    """Write directory/options.json + directory/weights.hdf5 (bilm-tf's layout), each file replaced atomically.
    An ELMoForManyLangs model has no such form; save_bilm_dir writes it in its own."""
    if isinstance(bilm, ManyLangsBiLM):
        raise WeightFileError("save_bilm writes bilm-tf's layout, which cannot hold an ELMoForManyLangs model (its learned "
                              "character and word vocabularies have no place there); use save_bilm_dir(bilm, directory), "
                              "which writes the model in its own format.")
    return save_bilm_tf(bilm, directory)


def save_bilm_dir(bilm: BiLM, directory: PathLike, remove_other_format: bool = False) -> Tuple[str, ...]:
    """Write `bilm` in its own format (an ELMoForManyLangs model stays one); returns the names written.
    remove_other_format: for a directory the caller owns (a pipe's own folder), delete the other format's
    files, so that a re-saved folder never holds two models."""
    directory = Path(directory)
    if isinstance(bilm, ManyLangsBiLM):
        written, stale = save_manylangs(bilm, directory), FILES[BILM_TF]
    else:
        save_bilm_tf(bilm, directory)
        written, stale = BILM_TF_FILES, FILES[MANYLANGS]
    if remove_other_format:
        for name in stale:
            (directory / name).unlink(missing_ok=True)
    return written


__all__ = ["BILM_TF", "MANYLANGS", "FILES", "detect_format", "load_bilm", "load_bilm_dir", "save_bilm", "save_bilm_dir", "weight_files"]
