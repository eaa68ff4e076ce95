"""`spacy package --build wheel` builds a wheel whose pipeline loads by name with the weights inside it:
in this environment, and in a new venv that has only that wheel, this project's own spacy-elmo wheel
(built beside it, as the project's `wheel` command does) and the package registries."""
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_elmo import save_bilm

from .conftest import random_bilm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "en_elmo_packaging_test"
TEXT = "Packaged pipelines carry their weights ."
LOAD = (f"import spacy, numpy; nlp = spacy.load('{PACKAGE}'); "
        f"numpy.save('out.npy', nlp('{TEXT}')._.elmo_layers); print(spacy.util.get_package_path('{PACKAGE}'))")


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """(pipeline wheel, expected elmo_layers of TEXT, folder with both wheels)."""
    tmp = tmp_path_factory.mktemp("package")
    weights = save_bilm(random_bilm(), tmp / "weights")
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights)})
    nlp.meta["name"] = PACKAGE[3:]
    nlp.meta["version"] = "0.0.1"
    expected = nlp(TEXT)._.elmo_layers
    nlp.to_disk(tmp / "pipeline")
    shutil.rmtree(weights)  # the wheel must not need the original files
    packages = tmp / "packages"
    packages.mkdir()
    built = run(sys.executable, "-m", "spacy", "package", tmp / "pipeline", packages, "--build", "wheel", "--force")
    assert built.returncode == 0, built.stdout + built.stderr
    return next(packages.rglob(f"{PACKAGE}*.whl")), expected, packages


@pytest.mark.slow
def test_spacy_package_round_trip(tmp_path, packaged):
    wheel, expected, _ = packaged
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr
    try:
        loaded = run(sys.executable, "-c", LOAD, cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        numpy.testing.assert_array_equal(numpy.load(tmp_path / "out.npy"), expected)
    finally:
        run(sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", PACKAGE)


@pytest.mark.slow
def test_packaged_pipeline_installs_in_a_new_venv_from_the_two_wheels_and_the_registries(tmp_path, packaged):
    wheel, expected, packages = packaged
    # This project's wheel, as project.yml's `wheel` command builds it (scripts/run.py wheel_commands).
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", packages, ROOT)
    assert built.returncode == 0, built.stderr
    own = next(packages.glob("spacy_elmo-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the pipeline wheel asks for spacy-elmo, which `own` provides
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    assert re.search(r"^Requires-Dist: spacy-elmo\b", metadata, re.M), metadata
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, clear=True)  # no system site-packages, nothing of this checkout
    python = env_dir / "bin" / "python"
    # The CPU build of torch first, as the Makefile installs it (a bare `pip install torch` pulls CUDA).
    torch = re.search(r"^TORCH := (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    installed = run(python, "-m", "pip", "install", "--quiet", torch)
    assert installed.returncode == 0, installed.stderr
    installed = run(python, "-m", "pip", "install", "--quiet", own, wheel)
    assert installed.returncode == 0, installed.stderr
    # Run outside the checkout, so `import spacy_elmo` cannot come from the source tree.
    loaded = run(python, "-c", LOAD + "; import spacy_elmo; print(spacy_elmo.__file__)", cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert str(env_dir) in loaded.stdout and str(ROOT) not in loaded.stdout, loaded.stdout
    numpy.testing.assert_array_equal(numpy.load(tmp_path / "out.npy"), expected)
