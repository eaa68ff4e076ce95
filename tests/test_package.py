"""`spacy package` builds a wheel whose pipeline loads by name with the weights inside it."""
import shutil
import subprocess
import sys

import numpy
import pytest
import spacy

PACKAGE = "en_elmo_packaging_test"


@pytest.mark.slow
def test_spacy_package_round_trip(tmp_path, tiny_weights_dir):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights_dir, weights)
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights)})
    nlp.meta["name"] = PACKAGE[3:]
    nlp.meta["version"] = "0.0.1"
    expected = nlp("Packaged pipelines carry their weights .")._.elmo_layers
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(weights)  # the wheel must not need the original files
    (tmp_path / "dist").mkdir()
    run = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True)  # noqa: E731
    built = run(sys.executable, "-m", "spacy", "package", str(tmp_path / "pipeline"), str(tmp_path / "dist"), "--build", "wheel", "--force")
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").rglob("*.whl"))
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(wheel))
    assert installed.returncode == 0, installed.stderr
    try:
        code = (
            f"import spacy, numpy; nlp = spacy.load('{PACKAGE}'); "
            "d = nlp('Packaged pipelines carry their weights .'); numpy.save('out.npy', d._.elmo_layers)"
        )
        loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        numpy.testing.assert_array_equal(numpy.load(tmp_path / "out.npy"), expected)
    finally:
        run(sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", PACKAGE)
