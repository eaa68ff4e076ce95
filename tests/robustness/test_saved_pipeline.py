"""A saved pipeline is self-contained: spacy.load reads its own copy of the weights, nothing else."""
import json
import re
import shutil

import numpy
import pytest
import spacy

from spacy_elmo import save_bilm
from tests.conftest import random_bilm

TEXTS = ["A saved pipeline carries its weights .", "second doc"]


@pytest.fixture
def saved(tmp_path):
    """(pipeline dir, the training-time weights dir named in its config.cfg, features before saving)."""
    weights = save_bilm(random_bilm(), tmp_path / "training" / "elmo")
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights), "dtype": "float32"})
    before = [doc._.elmo_layers for doc in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    assert str(weights) in (tmp_path / "pipeline" / "config.cfg").read_text(encoding="utf8")
    return tmp_path / "pipeline", weights, before


def _same_features(nlp, before):
    for b, doc in zip(before, nlp.pipe(TEXTS)):
        numpy.testing.assert_array_equal(doc._.elmo_layers, b)


@pytest.mark.parametrize("damage", ["garbage_weights", "other_options", "only_options"])
def test_spacy_load_ignores_a_broken_training_time_weights_dir(saved, damage):
    pipeline, weights, before = saved
    if damage == "garbage_weights":
        (weights / "weights.hdf5").write_bytes(b"overwritten by a later experiment")
    elif damage == "other_options":
        options = json.loads((weights / "options.json").read_text(encoding="utf8"))
        options["lstm"]["dim"] = 4096  # another biLM now lives there
        (weights / "options.json").write_text(json.dumps(options), encoding="utf8")
    else:
        (weights / "weights.hdf5").unlink()
    _same_features(spacy.load(pipeline), before)


def test_spacy_load_works_after_the_weights_dir_is_gone(saved):
    pipeline, weights, before = saved
    shutil.rmtree(weights)
    _same_features(spacy.load(pipeline), before)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"dtype": "int8"}, "dtype is 'int8'"),
        ({"mix_weights": ["a", "b", "c"]}, "mix_weights is"),
        ({"mix_gamma": "big"}, "mix_gamma is 'big'"),
        ({"mix_gamma": 1e39}, "mix_gamma is 1e+39; it must be a finite float32 number"),
        ({"mix_weights": [0.25, 1e39, 0.5]}, "mix_weights is [0.25, 1e+39, 0.5]; it must be null or a list of finite float32"),
        ({"mix_gamma": float("nan")}, "is not valid JSON"),
    ],
)
def test_a_hand_edited_saved_cfg_is_refused_naming_the_file(saved, edit, message):
    pipeline, _, _ = saved
    cfg_path = pipeline / "elmo" / "cfg"
    cfg = json.loads(cfg_path.read_text(encoding="utf8"))
    cfg.update(edit)
    cfg_path.write_text(json.dumps(cfg), encoding="utf8")
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        spacy.load(pipeline)
    assert str(cfg_path) in str(err.value)


def test_a_saved_cfg_with_infinity_is_refused(saved):
    pipeline, _, _ = saved
    cfg_path = pipeline / "elmo" / "cfg"
    text = cfg_path.read_text(encoding="utf8")
    cfg_path.write_text(re.sub(r'"mix_gamma": ?1\.0', '"mix_gamma": 1e999', text), encoding="utf8")  # reads as inf
    with pytest.raises(ValueError, match="mix_gamma is inf; it must be a finite float32 number") as err:
        spacy.load(pipeline)
    assert str(cfg_path) in str(err.value)


def test_a_saved_pipeline_serves_without_the_training_cache(tmp_path):
    """cache_size is a training setting: spacy.load / a packaged pipeline / from_bytes keep no activations,
    however many new documents they serve; training the pipe again turns the cache back on."""
    from spacy.training import Example

    weights = save_bilm(random_bilm(), tmp_path / "weights")
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights), "cache_size": 100_000})
    list(nlp.pipe(["a training batch", "another training batch"]))
    assert nlp.get_pipe("elmo").cache.n_tokens > 0  # the pipe built from its config caches, as in spacy train
    nlp.to_disk(tmp_path / "pipeline")
    served = [spacy.load(tmp_path / "pipeline"), spacy.blank("en").from_config(nlp.config).from_bytes(nlp.to_bytes())]
    texts = [f"unique document {i} says w{i} and v{i * 7}" for i in range(400)]
    for loaded in served:
        elmo = loaded.get_pipe("elmo")
        assert elmo.cfg["cache_size"] == 100_000  # kept, for training from this pipeline again
        for _ in loaded.pipe(texts + texts[:50], batch_size=64):
            pass
        assert elmo.cache.n_tokens == 0 and elmo.cache.hits == 0
    loaded = served[0]
    loaded.update([Example.from_dict(loaded.make_doc("trained again"), {})])
    list(loaded.pipe(texts[:5]))
    assert loaded.get_pipe("elmo").cache.n_tokens > 0
