"""`spacy package` builds a wheel whose pipeline loads by name with the weights inside it."""
import re
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import numpy
import pytest
import spacy

from tests.test_training import _corpora, _train

TEXT = "Packaged pipelines carry their weights ."


def _save_named(nlp, name: str, directory: Path):
    """Give the pipeline a package name, write it to directory, and return its features for TEXT."""
    nlp.meta["name"] = name
    nlp.meta["version"] = "0.0.1"
    expected = nlp(TEXT)._.elmo_layers
    nlp.to_disk(directory)
    return expected


def _package_install_load(pipeline: Path, tmp_path: Path, package: str, weights: Path, expected) -> None:
    """spacy package -> pip install -> spacy.load by name in a fresh process, with the training-time weights
    directory first present but broken, then gone: the features must equal `expected` both times."""
    dist = tmp_path / "dist"
    dist.mkdir()
    run = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True)  # noqa: E731
    built = run(sys.executable, "-m", "spacy", "package", str(pipeline), str(dist), "--build", "wheel", "--force")
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(dist.rglob("*.whl"))
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(wheel))
    assert installed.returncode == 0, installed.stderr
    code = f"import spacy, numpy; d = spacy.load('{package}')({TEXT!r}); numpy.save('out.npy', d._.elmo_layers)"
    try:
        (weights / "weights.hdf5").write_bytes(b"replaced by a later experiment")
        for state in ("broken", "gone"):
            if state == "gone":
                shutil.rmtree(weights)
            loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
            assert loaded.returncode == 0, f"{state}: {loaded.stderr}"
            numpy.testing.assert_array_equal(numpy.load(tmp_path / "out.npy"), expected)
    finally:
        run(sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", package)


@pytest.mark.slow
def test_spacy_package_round_trip(tmp_path, tiny_weights_dir):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights_dir, weights)
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights)})
    expected = _save_named(nlp, "elmo_packaging_test", tmp_path / "pipeline")
    _package_install_load(tmp_path / "pipeline", tmp_path, "en_elmo_packaging_test", weights, expected)


@pytest.mark.slow
def test_spacy_package_of_a_trained_pipeline(tmp_path, tiny_weights_dir):
    """Weights through [initialize] in spacy train; the package never reads that directory."""
    ner, _ = _corpora(tmp_path)
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights_dir, weights)
    model = _train("ner_elmo.cfg", ner, weights, tmp_path / "ner")
    nlp = spacy.load(model)
    expected = _save_named(nlp, "elmo_trained_packaging_test", tmp_path / "pipeline")
    _package_install_load(tmp_path / "pipeline", tmp_path, "en_elmo_trained_packaging_test", weights, expected)


ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """spacy-elmo's wheel as `python -m build` makes it (from its sdist), installed in a new venv (no system
    site-packages, nothing of this checkout) after the CPU build of torch, as the Makefile installs it (a bare
    `pip install torch` pulls CUDA): (the wheel, the venv's python)."""
    base = tmp_path_factory.mktemp("wheel_venv")
    # sdist, then the wheel from it: what an index would serve, and no stale build/ of the checkout inside
    built = _run(sys.executable, "-m", "build", "--outdir", base / "dist", ROOT, cwd=base)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    own = next((base / "dist").glob("spacy_elmo-*.whl"))
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    torch = re.search(r"^TORCH := (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    for requirements in ([torch], [own]):
        installed = _run(python, "-m", "pip", "install", "--quiet", "--no-compile", *requirements)
        assert installed.returncode == 0, installed.stderr
    return own, python


@pytest.mark.slow
def test_the_wheel_carries_the_configs_unchanged(wheel_venv):
    own, _ = wheel_venv
    with zipfile.ZipFile(own) as archive:
        shipped = {Path(n).name: archive.read(n) for n in archive.namelist() if n.startswith("spacy_elmo/configs/")}
    source = {p.name: p.read_bytes() for p in (ROOT / "configs").glob("*.cfg")}
    assert shipped == source


@pytest.mark.slow
def test_quickstart_from_the_wheel_in_a_new_venv(tmp_path, tiny_weights_dir, wheel_venv):
    """README's Quickstart where only the wheel is installed: init-config, spacy train on it, the elmo pipe."""
    _, python = wheel_venv
    ner, _ = _corpora(tmp_path)
    spacy_cli = python.with_name("spacy")
    written = _run(spacy_cli, "elmo", "init-config", "ner", "config.cfg", "--weights", tiny_weights_dir, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    trained = _run(python, "-m", "spacy", "train", "config.cfg", "--paths.train", ner, "--paths.dev", ner, "--output",
                   "model", "--training.max_steps", "2", "--training.eval_frequency", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert (tmp_path / "model" / "model-last" / "elmo").is_dir()
    code = textwrap.dedent(f"""
        import spacy, spacy_elmo
        nlp = spacy.blank("en")
        nlp.add_pipe("elmo", config={{"weights": {str(tiny_weights_dir)!r}}})
        doc = nlp("ELMo vectors depend on context .")
        assert doc._.elmo_layers.shape == (3, 6, 16), doc._.elmo_layers.shape
        assert doc._.elmo.shape == (6, 16) and doc[1:3]._.elmo.shape == (16,)
        print(spacy_elmo.__file__)
    """)
    used = _run(python, "-c", code, cwd=tmp_path)  # outside the checkout: spacy_elmo cannot come from the source tree
    assert used.returncode == 0, used.stderr
    assert str(python.parents[1]) in used.stdout and str(ROOT) not in used.stdout, used.stdout


@pytest.mark.slow
def test_packaged_pipeline_installs_in_a_new_venv_from_its_wheel_beside_the_spacy_elmo_wheel(tmp_path, tiny_weights_dir,
                                                                                             wheel_venv):
    """What project.yml's `wheel` + `package-SIZE` commands leave in packages/: the pipeline's wheel and this
    project's spacy-elmo wheel. A new venv (no system site-packages, nothing of this checkout) gets both plus
    the registries, and the pipeline loads by name there with the same features."""
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(tiny_weights_dir)})
    expected = _save_named(nlp, "elmo_venv_packaging_test", tmp_path / "pipeline")
    shutil.rmtree(tiny_weights_dir)  # the wheel must not need the original files
    packages = tmp_path / "packages"
    (packages / "test").mkdir(parents=True)
    run = _run
    built = run(sys.executable, "-m", "spacy", "package", tmp_path / "pipeline", packages / "test", "--build", "wheel",
                "--force")
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((packages / "test").rglob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the pipeline asks for spacy-elmo, which the wheel beside it provides
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    assert re.search(r"^Requires-Dist: spacy-elmo\b", metadata, re.M), metadata
    own, python = wheel_venv  # torch's CPU build and spacy-elmo's wheel (built from this checkout) are installed
    env_dir = python.parents[1]
    installed = run(python, "-m", "pip", "install", "--quiet", "--no-compile", own, wheel)
    assert installed.returncode == 0, installed.stderr
    code = (f"import spacy, numpy, spacy_elmo; d = spacy.load('en_elmo_venv_packaging_test')({TEXT!r}); "
            "numpy.save('out.npy', d._.elmo_layers); print(spacy_elmo.__file__)")
    loaded = run(python, "-c", code, cwd=tmp_path)  # outside the checkout: spacy_elmo cannot come from the source tree
    assert loaded.returncode == 0, loaded.stderr
    assert str(env_dir) in loaded.stdout and str(ROOT) not in loaded.stdout, loaded.stdout
    numpy.testing.assert_array_equal(numpy.load(tmp_path / "out.npy"), expected)


@pytest.mark.slow
def test_the_wheel_is_typed(wheel_venv):
    """PEP 561: py.typed ships in the wheel and lands beside the installed package, so type checkers read
    spacy_elmo's hints."""
    own, python = wheel_venv
    with zipfile.ZipFile(own) as archive:
        assert "spacy_elmo/py.typed" in archive.namelist()
    where = _run(python, "-c", "import pathlib, spacy_elmo; print(pathlib.Path(spacy_elmo.__file__).parent / 'py.typed')", cwd=own.parent)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_file()


@pytest.mark.slow
def test_the_wheel_metadata_names_what_a_user_needs(wheel_venv):
    """Classifiers for the license, topics and the Python CI runs on, project URLs, Requires-Python that admits
    that Python, and the workflow's own extra (`pip install spacy-elmo[project]`)."""
    from email.parser import Parser

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    own, _ = wheel_venv
    with zipfile.ZipFile(own) as archive:
        text = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(text)
    classifiers = metadata.get_all("Classifier")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Programming Language :: Python :: {running}" in classifiers
    assert SpecifierSet(metadata["Requires-Python"]).contains(running)
    assert "License :: OSI Approved :: MIT License" in classifiers
    assert any(c.startswith("Topic :: ") for c in classifiers)
    assert metadata.get_all("Project-URL")
    assert "project" in metadata.get_all("Provides-Extra")
    project_needs = {Requirement(r).name for r in metadata.get_all("Requires-Dist") if 'extra == "project"' in r}
    assert {"build", "matplotlib"} <= project_needs


def test_the_changelog_describes_the_current_version():
    from spacy_elmo.about import __version__

    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf8"), re.M)
    assert headings and headings[0] == __version__
