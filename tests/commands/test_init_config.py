"""`spacy elmo init-config ner|textcat|pretrain OUTPUT`: a ready config from the shipped ones, checked by spaCy's
own validation (ner, textcat) and the pretraining settings loader (pretrain)."""
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_elmo.commands import app
from spacy_elmo.commands.init_config import configs_dir
from tests.test_training import _corpora

ROOT = Path(__file__).resolve().parents[2]


def init_config(*args):
    result = CliRunner().invoke(app, ["init-config", *map(str, args)])
    return result


def test_a_checkout_reads_the_top_level_configs():
    assert configs_dir() == ROOT / "configs"


@pytest.mark.parametrize("kind", ["ner", "textcat"])
def test_task_configs_pass_spacy_debug_config(tmp_path, tiny_weights_dir, kind):
    ner, cats = _corpora(tmp_path)
    data = ner if kind == "ner" else cats
    out = tmp_path / f"{kind}.cfg"
    result = init_config(kind, out, "--weights", tiny_weights_dir)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and f"spacy train {out} --paths.train" in result.output
    assert f'elmo_weights = "{tiny_weights_dir.resolve()}"' in out.read_text(encoding="utf8")
    # the weights come from the config itself: no --paths.elmo_weights
    checked = subprocess.run([sys.executable, "-m", "spacy", "debug", "config", str(out), "--paths.train", str(data),
                              "--paths.dev", str(data)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Config is valid" in checked.stdout


@pytest.mark.parametrize("options, shipped, architecture", [
    ([], "pretrain_small.cfg", "LSTM 512, projection 128, 2 layers, 384 char-CNN filters, 1 highway; 2,740,064 parameters"),
    (["--gpu"], "pretrain_gpu.cfg", "LSTM 1024, projection 256"),
    (["--size", "full"], "pretrain_full.cfg", "LSTM 4096, projection 512, 2 layers, 2048 char-CNN filters, 2 highway; "
                                              "93,600,864 parameters"),
])
def test_pretrain_configs_load_in_the_pretrain_settings(tmp_path, options, shipped, architecture):
    from spacy_elmo.pretrain.config import load_config

    out = tmp_path / "pretrain.cfg"
    result = init_config("pretrain", out, *options)
    assert result.exit_code == 0, result.output
    assert f"({shipped})" in result.output and architecture in result.output
    assert ("needs GPUs" in result.output) == (options == ["--size", "full"])
    config = load_config(out, {"paths.train": str(tmp_path / "train.txt"), "paths.dev": str(tmp_path / "dev.txt")})
    shipped_config = load_config(ROOT / "configs" / shipped)
    assert config["model"] == shipped_config["model"] and config["training"] == shipped_config["training"]
    assert "# " in out.read_text(encoding="utf8")  # the shipped comments (why each setting) come along


def test_pretrain_with_weights_continues_that_bilm(tmp_path, tiny_weights_dir):
    from spacy_elmo.pretrain.config import load_config

    out = tmp_path / "adapt.cfg"
    result = init_config("pretrain", out, "--weights", tiny_weights_dir)
    assert result.exit_code == 0, result.output
    assert "options.json" in result.output and "LSTM 24, projection 8" in result.output
    config = load_config(out, {"paths.train": str(tmp_path / "train.txt"), "paths.dev": str(tmp_path / "dev.txt")})
    assert config["paths"]["init_from"] == str(tiny_weights_dir.resolve())


def test_dash_writes_the_config_to_stdout_and_notes_to_stderr(tmp_path):
    result = init_config("pretrain", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout == init_config_text(tmp_path, "pretrain")
    assert "architecture" in result.stderr and "architecture" not in result.stdout


def init_config_text(tmp_path: Path, kind: str) -> str:
    out = tmp_path / f"{kind}-file.cfg"
    assert init_config(kind, out).exit_code == 0
    return out.read_text(encoding="utf8")


def test_an_existing_file_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "config.cfg"
    out.write_text("mine", encoding="utf8")
    refused = init_config("ner", out)
    assert refused.exit_code == 1 and "exists; pass --force" in refused.output
    assert out.read_text(encoding="utf8") == "mine"
    assert init_config("ner", out, "--force").exit_code == 0
    assert "[components.elmo]" in out.read_text(encoding="utf8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.cfg"]  # no temporary left


@pytest.mark.parametrize("args, message", [
    (["ner", "{tmp}/c.cfg", "--size", "full"], "--size chooses the biLM to pretrain"),
    (["pretrain", "{tmp}/c.cfg", "--size", "huge"], "--size must be one of small, full"),
    (["parser", "{tmp}/c.cfg"], "unknown config 'parser'; choose one of ner, textcat, pretrain"),
    (["ner", "{tmp}/c.cfg", "--weights", "{tmp}/nothing"], "--weights: ELMo weights directory not found"),
    (["pretrain", "{tmp}/c.cfg", "--weights", "{tmp}", "--size", "small"], "drop --size"),
    (["ner", "{tmp}/missing/c.cfg"], "does not exist; create it first"),
    (["ner", "{tmp}"], "is a directory"),
])
def test_bad_options_are_one_line(tmp_path, tiny_weights_dir, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--size" in args and "small" in args:
        args[args.index("--weights") + 1] = str(tiny_weights_dir)
    before = sorted(tmp_path.rglob("*"))
    result = init_config(*args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before
