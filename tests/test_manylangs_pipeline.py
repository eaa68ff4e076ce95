"""ELMoForManyLangs models in German and Chinese spaCy pipelines, end to end: add_pipe, the [initialize]
loader, doc._.elmo, nlp.to_disk and spacy.load of a copy once the original model directory is gone,
to_bytes / from_bytes, and the wheel of `spacy package` loading without the original directory."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_elmo import load_bilm
from spacy_elmo.bilm.manylangs import ManyLangsBiLM
from tests.bilm.test_manylangs import write_random_model

TEXTS = {
    "de": "Die Straßenbahn fährt über die Brücke. Übermorgen kommt der Donaudampfschifffahrtskapitän!",
    "zh": "北京欢迎你。今天天气很好。",
}


def _expected(bilm, doc) -> numpy.ndarray:
    return bilm.embed_sentences([[t.text for t in doc]])[0]


@pytest.fixture
def model_dir(tmp_path):
    write_random_model(tmp_path / "manylangs", seed=3)
    return tmp_path / "manylangs"


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_a_pipeline_in_any_language_runs_and_survives_without_the_model_directory(lang, model_dir, tmp_path):
    reference = load_bilm(model_dir)
    nlp = spacy.blank(lang)
    nlp.add_pipe("elmo", config={"weights": str(model_dir), "dtype": "float32"})
    doc = nlp(TEXTS[lang])
    assert isinstance(nlp.get_pipe("elmo").bilm, ManyLangsBiLM)
    assert doc._.elmo_layers.shape == (3, len(doc), 12) and doc._.elmo.shape == (len(doc), 12)
    numpy.testing.assert_allclose(doc._.elmo_layers, _expected(reference, doc), atol=1e-6)
    assert doc[1]._.elmo.shape == (12,) and doc[0:2]._.elmo.shape == (12,)

    nlp.to_disk(tmp_path / "pipeline")
    saved = {p.name for p in (tmp_path / "pipeline" / "elmo").iterdir()}
    assert {"config.json", "char.dic", "word.dic", "token_embedder.pkl", "encoder.pkl"} <= saved
    assert "options.json" not in saved and "weights.hdf5" not in saved
    shutil.copytree(tmp_path / "pipeline", tmp_path / "copy")
    shutil.rmtree(model_dir)
    shutil.rmtree(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "copy")
    assert loaded.lang == lang
    numpy.testing.assert_array_equal(loaded(TEXTS[lang])._.elmo_layers, doc._.elmo_layers)

    blank = spacy.blank(lang)
    blank.add_pipe("elmo", config={"dtype": "float32"})
    blank.get_pipe("elmo").from_bytes(loaded.get_pipe("elmo").to_bytes())
    numpy.testing.assert_array_equal(blank(TEXTS[lang])._.elmo_layers, doc._.elmo_layers)


def test_the_initialize_loader_reads_a_manylangs_directory(model_dir):
    nlp = spacy.blank("de")
    nlp.add_pipe("elmo", config={"dtype": "float32"})
    nlp.config["initialize"]["components"]["elmo"] = {
        "weights_loader": {"@model_loaders": "spacy-elmo.WeightsLoader.v1", "path": str(model_dir)}}
    nlp.initialize()
    doc = nlp(TEXTS["de"])
    numpy.testing.assert_allclose(doc._.elmo_layers, _expected(load_bilm(model_dir), doc), atol=1e-6)


def test_a_directory_of_neither_format_is_named_at_first_use(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "README.txt").write_text("x")
    nlp = spacy.blank("de")
    nlp.add_pipe("elmo", config={"weights": str(tmp_path / "w")})
    with pytest.raises(ValueError, match="holds no ELMo model .found: README.txt.; a bilm-tf/AllenNLP biLM needs options.json"):
        nlp("Hallo Welt")


def test_switching_a_saved_pipe_to_the_other_format_leaves_one_model(model_dir, tiny_weights_dir, tmp_path):
    """nlp.to_disk over an earlier save of a bilm-tf pipe: the pipe's folder holds the new model only."""
    for weights in (tiny_weights_dir, model_dir):
        nlp = spacy.blank("de")
        nlp.add_pipe("elmo", config={"weights": str(weights), "dtype": "float32"})
        expected = nlp("Guten Tag")._.elmo_layers
        nlp.to_disk(tmp_path / "pipeline")
        numpy.testing.assert_array_equal(spacy.load(tmp_path / "pipeline")("Guten Tag")._.elmo_layers, expected)
    assert not (tmp_path / "pipeline" / "elmo" / "weights.hdf5").exists()


@pytest.mark.slow
def test_the_spacy_package_wheel_of_a_german_pipeline_loads_without_the_model_directory(model_dir, tmp_path):
    nlp = spacy.blank("de")
    nlp.add_pipe("elmo", config={"weights": str(model_dir), "dtype": "float32"})
    nlp.meta.update(name="elmo_manylangs_test", version="0.0.1")
    expected = nlp(TEXTS["de"])._.elmo_layers
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)
    dist = tmp_path / "dist"
    dist.mkdir()
    built = subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(dist), "--build", "wheel",
                            "--force"], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    shutil.rmtree(tmp_path / "pipeline")
    wheel = next(dist.rglob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "unpacked")
    data = next(p.parent for p in (tmp_path / "unpacked").rglob("config.cfg"))
    assert (data / "elmo" / "encoder.pkl").is_file()
    numpy.testing.assert_array_equal(spacy.load(data)(TEXTS["de"])._.elmo_layers, expected)


def test_spacy_elmo_embed_reads_a_manylangs_directory(model_dir, tmp_path):
    import h5py

    text = tmp_path / "input.txt"
    text.write_text("Die Straßenbahn fährt .\n\n北京 欢迎 你\n", encoding="utf8")
    out = tmp_path / "out.hdf5"
    done = subprocess.run([sys.executable, "-m", "spacy", "elmo", "embed", str(model_dir), str(text), str(out), "--all"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bilm = load_bilm(model_dir)
    with h5py.File(out, "r") as f:
        assert f["1"].shape == (3, 0, 12)
        for i, line in ((0, "Die Straßenbahn fährt ."), (2, "北京 欢迎 你")):
            numpy.testing.assert_allclose(f[str(i)][...], bilm.embed_sentences([line.split()])[0], atol=1e-5)
    refused = subprocess.run([sys.executable, "-m", "spacy", "elmo", "embed", str(model_dir), str(text), str(model_dir / "encoder.pkl")],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "which this command reads" in refused.stderr, refused.stderr


@pytest.mark.slow
def test_spacy_train_a_german_ner_on_a_manylangs_model(model_dir, tmp_path):
    """The shipped config with [nlp] lang set to de and the weights loader pointed at the model; the trained
    pipeline is German, its elmo pipe holds the ELMoForManyLangs files, and it loads once the model is gone."""
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("de")
    docs = DocBin()
    for i, (who, where) in enumerate([("Anna", "Köln"), ("Jürgen", "München"), ("Özlem", "Düsseldorf")] * 4):
        doc = nlp(f"Gestern fuhr {who} nach {where} und es war {'schön' if i % 2 else 'kalt'} .")
        doc.ents = [Span(doc, 2, 3, "PER"), Span(doc, 4, 5, "LOC")]
        docs.add(doc)
    docs.to_disk(tmp_path / "train.spacy")
    out = tmp_path / "trained"
    done = subprocess.run([sys.executable, "-m", "spacy", "train", str(Path(__file__).resolve().parents[1] / "configs" / "ner_elmo.cfg"),
                           "--output", str(out), "--nlp.lang", "de", "--paths.train", str(tmp_path / "train.spacy"),
                           "--paths.dev", str(tmp_path / "train.spacy"), "--paths.elmo_weights", str(model_dir),
                           "--training.max_steps", "4", "--training.eval_frequency", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(model_dir)
    trained = spacy.load(out / "model-last")
    assert trained.lang == "de" and (out / "model-last" / "elmo" / "encoder.pkl").is_file()
    doc = trained("Gestern fuhr Anna nach Köln .")
    assert doc._.elmo_layers.shape[:2] == (3, len(doc))


def test_pretrain_init_from_a_manylangs_directory_is_refused_before_anything_is_written(model_dir, tmp_path):
    """pretrain trains bilm-tf's byte-level biLM: a ManyLangs model cannot seed it, and the message says what to do."""
    from tests.pretrain.helpers import make_corpus, pretrain_args

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "spacy_elmo", *map(str, pretrain_args(make_corpus(tmp_path / "c", n_train=50, n_dev=10), out,
                                                                                        "--init-from", model_dir))],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "ELMoForManyLangs model, which pretrain cannot continue" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not out.exists()
