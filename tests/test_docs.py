"""README.md and docs/ stay a user's guide that is true to the code: the README's shape, its Python quickstart
run as written (on a tiny biLM standing in for the downloaded one), links that resolve, and the reference pages'
settings lists equal to the settings the code has."""
import re
from pathlib import Path

import pytest

from spacy_elmo import save_bilm

from .conftest import random_bilm

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GENERATED = "<!-- WEASEL: AUTO-GENERATED DOCS START"


def readme_lines():
    return README.read_text(encoding="utf8").splitlines()


def guide_text() -> str:
    """README without a section `make project-docs` generates from project.yml (it lives in docs/workflow.md now)."""
    text = README.read_text(encoding="utf8")
    return text.split(GENERATED)[0]


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def code_blocks(text: str, language: str):
    return re.findall(r"```" + language + r"\n(.*?)```", text, flags=re.S)


def test_readme_is_a_short_guide_with_install_and_quickstart_first():
    lines = readme_lines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; keep it a guide (<= 300) and move detail to docs/"
    headings = {line: i for i, line in enumerate(lines) if line.startswith("## ")}
    assert headings.get("## Install", 999) < 80 and headings.get("## Quickstart", 999) < 80, headings


def test_readme_top_commands_are_makefile_targets():
    top = "\n".join(readme_lines()[:15])
    makefile = (ROOT / "Makefile").read_text(encoding="utf8")
    for target in ("demo", "test"):
        assert f"make {target}" in top
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"README's `make {target}` is not a Makefile target"


def test_readme_carries_no_run_history():
    """Commit hashes, dates, issue numbers and run narratives belong in docs/EXPERIMENTS.md."""
    text = guide_text()
    assert not re.findall(r"`[0-9a-f]{7,40}`", text), "a commit hash in README.md"
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", text), "a date in README.md"
    assert not re.findall(r"\bissues? \d+", text, flags=re.I), "an issue number in README.md"
    assert "lent" not in text.lower().split()


def test_relative_links_resolve():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    for page in pages:
        # weasel writes its section's links relative to the project root, where project.yml is
        written = page.read_text(encoding="utf8").split(GENERATED)[0]
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", written):
            if re.match(r"[a-z]+://", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


@pytest.fixture
def downloaded_small_elmo(tmp_path, monkeypatch) -> Path:
    """What the quickstart's curl commands leave: elmo_small/ with options.json + weights.hdf5 (a tiny random
    biLM here, so the test needs no network), in the current directory."""
    monkeypatch.chdir(tmp_path)
    return save_bilm(random_bilm(), tmp_path / "elmo_small")


def test_readme_quickstart_python_runs_as_written(downloaded_small_elmo):
    blocks = code_blocks(section(guide_text(), "## Quickstart"), "python")
    assert len(blocks) == 2, "the quickstart has a pipeline block and a biLM block"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md quickstart (pipeline)", "exec"), namespace)
    doc, nlp = namespace["doc"], namespace["nlp"]
    width = nlp.get_pipe("elmo").width
    assert doc._.elmo_layers.shape == (3, len(doc), width) and doc._.elmo_layers.dtype == "float16"
    assert doc._.elmo.shape == (len(doc), width) and doc._.elmo.dtype == "float32"
    import spacy

    reloaded = spacy.load("elmo_pipeline")  # what the block's comment promises: no elmo_small needed
    assert reloaded(doc.text)._.elmo.shape == (len(doc), width)

    exec(compile(blocks[1], "README.md quickstart (biLM)", "exec"), namespace)
    arrays = namespace["arrays"]
    assert [a.shape for a in arrays] == [(3, 2, width), (3, 0, width)] and arrays[0].dtype == "float32"
    assert (downloaded_small_elmo.parent / "copy" / "weights.hdf5").is_file()


def test_component_page_lists_the_factory_settings_with_their_defaults():
    from confection import Config

    from spacy_elmo.component import DEFAULT_CONFIG

    block = code_blocks(section((DOCS / "component.md").read_text(encoding="utf8"), "## Settings"), "ini")[0]
    # the block without its comments is a config: the defaults it shows are the factory's
    text = "\n".join(line.split("  #")[0].rstrip() for line in block.splitlines())
    shown = Config().from_str("[components]\n" + text)
    elmo = dict(shown["components"]["elmo"])
    assert elmo.pop("factory") == "elmo"
    assert elmo == dict(DEFAULT_CONFIG["elmo"])


def test_pretraining_page_names_every_setting():
    from confection import Config

    from spacy_elmo.pretrain.config import DEFAULT_CONFIG

    page = (DOCS / "pretraining.md").read_text(encoding="utf8")
    defaults = Config().from_str(DEFAULT_CONFIG)
    missing = [f"{s}.{k}" for s, keys in defaults.items() for k in keys
               if f"`{s}.{k}`" not in page and not re.search(rf"`{s}\.\w+`[^|]*`{k}`", page)]
    assert not missing, f"docs/pretraining.md does not describe {missing}"


def test_manylangs_page_lists_the_44_languages_with_spacy_codes():
    import spacy.util

    table = section((DOCS / "manylangs.md").read_text(encoding="utf8"), "## Languages")
    rows = re.findall(r"^\| (.+?) \| (\d+) \| `(\w+)` \| (.+?) \| (\d+) \| `(\w+)` \|$", table, flags=re.M)
    entries = [row[i : i + 3] for row in rows for i in (0, 3)]
    assert len(entries) == 44 and len({archive for _, archive, _ in entries}) == 44
    for language, _, code in entries:
        assert spacy.util.get_lang_class(code), f"{language}: spaCy has no language {code!r}"


def test_workflow_page_counts_the_pipelines_each_size_trains(monkeypatch):
    """docs/workflow.md's table of sizes against the queue scripts/run.py builds for each size."""
    from tests.scripts.test_prepare import SCRIPTS, load_script

    monkeypatch.syspath_prepend(str(SCRIPTS))  # run.py imports its sibling presets.py
    run = load_script("run")
    table = section((DOCS / "workflow.md").read_text(encoding="utf8"), "## Sizes")
    for size in ("ci", "demo", "gpu", "full"):
        row = re.search(rf"^\| `{size}` \|.*?\| (\d+) pipelines", table, flags=re.M)
        assert row, f"docs/workflow.md has no row for the {size} size"
        assert int(row.group(1)) == len(list(run.runs(size))), size


def test_pretraining_page_gives_each_setting_its_default():
    """Rows of one setting: the default column is the value in spacy_elmo/pretrain/config.py's DEFAULT_CONFIG."""
    import json

    from confection import Config

    from spacy_elmo.pretrain.config import DEFAULT_CONFIG

    def shown(value) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return str(value).lower()
        return json.dumps(value) if isinstance(value, (str, list)) else str(value)

    defaults = {f"{s}.{k}": v for s, keys in Config().from_str(DEFAULT_CONFIG).items() for k, v in keys.items()}
    table = section((DOCS / "pretraining.md").read_text(encoding="utf8"), "## Settings")
    rows = re.findall(r"^\| `(\w+\.\w+)` \| ([^|]*) \|", table, flags=re.M)
    assert len(rows) > 30
    for key, cell in rows:
        assert cell.strip().strip("`") == shown(defaults[key]), f"docs/pretraining.md: {key} default {cell.strip()}"
