"""Weight files: the modes they are created with, and options.json / weights.hdf5 that do not fit."""
import json
import os
import stat
import subprocess
import sys
import textwrap

import h5py
import pytest
import spacy

from spacy_elmo import load_bilm, save_bilm
from spacy_elmo.bilm import WeightFileError
from tests.conftest import random_bilm


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_bilm_creates_files_with_the_umask_mode(tmp_path, umask):
    out = save_bilm(random_bilm(), tmp_path / "bilm")
    for name in ("options.json", "weights.hdf5"):
        assert _mode(out / name) == 0o666 & ~umask, name


def test_saved_pipeline_files_have_the_umask_mode(tmp_path, umask):
    weights = save_bilm(random_bilm(), tmp_path / "bilm")
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights)})
    nlp.to_disk(tmp_path / "pipeline")
    for name in ("options.json", "weights.hdf5", "cfg"):
        assert _mode(tmp_path / "pipeline" / "elmo" / name) == 0o666 & ~umask, name


# ---------------------------------------------------------------- options.json asking for too much
def _options_with(weights_dir, **changes):
    data = json.loads((weights_dir / "options.json").read_text(encoding="utf8"))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for parent in parents:
            node = node[parent]
        node[key] = value
    (weights_dir / "options.json").write_text(json.dumps(data), encoding="utf8")


def _load_in_a_limited_child(weights_dirs) -> list:
    """load_bilm and nlp.add_pipe("elmo") + its first use on each directory, in one child process that may use 2 GB of
    address space: a regression (building the model an options.json asks for) then fails there with
    MemoryError instead of exhausting this machine. Returns, per directory, the two outcomes as
    "ExceptionName message" or "loaded"."""
    script = textwrap.dedent("""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, 2 * 1024 ** 3))
        import spacy
        from spacy_elmo import load_bilm

        def outcome(call):
            try:
                call()
                return "loaded"
            except BaseException as err:
                return f"{type(err).__name__} {err}"

        def first_use(d):  # add_pipe records the directory; the first call reads it
            nlp = spacy.blank("en")
            nlp.add_pipe("elmo", config={"weights": d})
            nlp("first use")

        for d in json.loads(sys.argv[1]):
            print(json.dumps([outcome(lambda: load_bilm(d + "/options.json", d + "/weights.hdf5")),
                              outcome(lambda: first_use(d))]), flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script, json.dumps([str(d) for d in weights_dirs])],
                            capture_output=True, text=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(weights_dirs), result.stderr[-2000:]
    return rows


IMPLAUSIBLE = [
    ({"lstm__dim": 10_000_000}, "lstm.dim is 10000000"),
    ({"lstm__projection_dim": 10_000_000}, "lstm.projection_dim is 10000000"),
    ({"lstm__n_layers": 100_000}, "lstm.n_layers is 100000"),
    ({"char_cnn__max_characters_per_token": 1_000_000_000}, "char_cnn.max_characters_per_token is 1000000000"),
    ({"char_cnn__n_highway": -1}, "char_cnn.n_highway is -1"),
    ({"lstm__use_skip_connections": "false"}, "use_skip_connections must be true or false"),
    ({"char_cnn__filters": [[1]]}, "is not [width, number_of_filters]"),
    ({"char_cnn__filters": [[-2, 4]]}, "width or count below 1"),
]


def test_implausible_options_are_refused_before_anything_is_built(tmp_path):
    dirs = []
    for k, (change, _) in enumerate(IMPLAUSIBLE):
        dirs.append(save_bilm(random_bilm(), tmp_path / f"case{k}"))
        _options_with(dirs[-1], **change)
    # Within the bounds, but a model of ~70 GB: the weight file's shapes must refuse it before the model
    # is built (in the 2 GB child, building it would end in MemoryError, not WeightFileError).
    dirs.append(save_bilm(random_bilm(), tmp_path / "huge"))
    _options_with(dirs[-1], lstm__dim=32768, lstm__projection_dim=8192)
    *rows, huge = _load_in_a_limited_child(dirs)
    for (change, message), directory, (loaded, added) in zip(IMPLAUSIBLE, dirs, rows):
        assert loaded.startswith("OptionsError") and message in loaded, (change, loaded)
        assert str(directory / "options.json") in loaded, loaded
        assert added.startswith("ElmoWeightsError") and message in added, (change, added)
    for outcome in huge:
        assert "WeightFileError" in outcome or outcome.startswith("ElmoWeightsError"), outcome
        assert "CNN_proj/W_proj" in outcome and "expected (18, 8192) from options.json" in outcome, outcome


def test_a_group_where_a_dataset_belongs_is_a_weight_file_error(tiny_weights_dir):
    path = tiny_weights_dir / "weights.hdf5"
    with h5py.File(path, "a") as f:
        del f["CNN_proj/b_proj"]
        f.create_group("CNN_proj/b_proj")
    with pytest.raises(WeightFileError, match=r"'CNN_proj/b_proj' is an HDF5 group, not a dataset"):
        load_bilm(tiny_weights_dir / "options.json", path)
