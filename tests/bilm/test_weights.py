import json

import h5py
import numpy
import pytest

from spacy_elmo import OptionsError, WeightFileError, load_bilm, save_bilm
from spacy_elmo.bilm.weights import bilm_to_arrays, expected_shapes


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as fin:
        fin.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_bilm_tf_file_load_save_load_is_bit_exact(bilm_tf_fixtures, tmp_path):
    original = _datasets(bilm_tf_fixtures / "lm_weights.hdf5")
    bilm = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5")
    save_bilm(bilm, tmp_path)
    written = _datasets(tmp_path / "weights.hdf5")
    assert sorted(written) == sorted(original)
    for key, array in original.items():
        assert written[key].dtype == numpy.float32
        numpy.testing.assert_array_equal(written[key], array, err_msg=key)
    again = load_bilm(tmp_path / "options.json", tmp_path / "weights.hdf5")
    for key, array in bilm_to_arrays(again).items():
        numpy.testing.assert_array_equal(array, original[key], err_msg=key)
    # options survive too, and what we do not interpret is kept
    assert json.loads((tmp_path / "options.json").read_text())["lstm"]["dim"] == 64


def test_unknown_option_keys_are_kept(tiny_weights_dir, tmp_path):
    options = json.loads((tiny_weights_dir / "options.json").read_text())
    options["n_tokens_vocab"] = 793471
    (tiny_weights_dir / "options.json").write_text(json.dumps(options))
    bilm = load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    save_bilm(bilm, tmp_path)
    assert json.loads((tmp_path / "options.json").read_text())["n_tokens_vocab"] == 793471


def test_missing_files_name_the_path(tmp_path, tiny_weights_dir):
    with pytest.raises(OptionsError, match="not found.*nothing.json"):
        load_bilm(tmp_path / "nothing.json", tiny_weights_dir / "weights.hdf5")
    with pytest.raises(WeightFileError, match="not found.*nothing.hdf5"):
        load_bilm(tiny_weights_dir / "options.json", tmp_path / "nothing.hdf5")


def test_truncated_file(tiny_weights_dir):
    path = tiny_weights_dir / "weights.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="weights.hdf5"):
        load_bilm(tiny_weights_dir / "options.json", path)


def test_garbage_file(tiny_weights_dir):
    path = tiny_weights_dir / "weights.hdf5"
    path.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(WeightFileError, match="not a readable HDF5 file"):
        load_bilm(tiny_weights_dir / "options.json", path)


def test_mismatched_options_name_key_and_shapes(tiny_weights_dir):
    options = json.loads((tiny_weights_dir / "options.json").read_text())
    options["lstm"]["dim"] = 32
    (tiny_weights_dir / "options.json").write_text(json.dumps(options))
    with pytest.raises(WeightFileError) as info:
        load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    message = str(info.value)
    assert "RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0" in message
    assert "(16, 96)" in message and "(16, 128)" in message


def test_missing_dataset(tiny_weights_dir):
    with h5py.File(tiny_weights_dir / "weights.hdf5", "a") as fout:
        del fout["CNN_proj/W_proj"]
    with pytest.raises(WeightFileError, match="'CNN_proj/W_proj' is missing"):
        load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")


def test_nan_weights_are_refused(tiny_weights_dir):
    with h5py.File(tiny_weights_dir / "weights.hdf5", "a") as fout:
        fout["CNN_proj/b_proj"][0] = numpy.nan
    with pytest.raises(WeightFileError, match="NaN"):
        load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda o: o["char_cnn"].__setitem__("activation", "gelu"), "activation"),
        (lambda o: o["char_cnn"].__setitem__("n_characters", 300), "n_characters"),
        (lambda o: o.pop("lstm"), "missing or has a malformed key"),
    ],
)
def test_unsupported_options_are_clear_errors(tiny_weights_dir, edit, message):
    options = json.loads((tiny_weights_dir / "options.json").read_text())
    edit(options)
    (tiny_weights_dir / "options.json").write_text(json.dumps(options))
    with pytest.raises(OptionsError, match=message):
        load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")


def test_invalid_json(tiny_weights_dir):
    (tiny_weights_dir / "options.json").write_text("{not json")
    with pytest.raises(OptionsError, match="not valid JSON"):
        load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")


def test_save_is_atomic_and_leaves_no_temp_files(tiny_weights_dir, tmp_path):
    bilm = load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    target = tmp_path / "out"
    save_bilm(bilm, target)
    save_bilm(bilm, target)  # overwrite in place
    assert sorted(p.name for p in target.iterdir()) == ["options.json", "weights.hdf5"]


def test_expected_shapes_cover_every_dataset(bilm_tf_fixtures):
    from spacy_elmo import BiLMOptions

    shapes = expected_shapes(BiLMOptions.from_file(bilm_tf_fixtures / "options.json"))
    data = _datasets(bilm_tf_fixtures / "lm_weights.hdf5")
    assert {k: v.shape for k, v in data.items()} == shapes
