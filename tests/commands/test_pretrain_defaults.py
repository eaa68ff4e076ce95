"""`spacy elmo pretrain` says which biLM it trains and how large it is before reading the corpus; a config
without [model] does not train the original ELMo's 93.6M parameters on a CPU."""
import torch
from confection import Config

from spacy_elmo.bilm.bilm import BiLM
from spacy_elmo.pretrain.config import CPU_MODEL, DEFAULT_CONFIG, Settings, load_config
from tests.pretrain.helpers import ROOT, TINY_CONFIG, make_corpus, output_of, pretrain_args, run_cli


def _n_parameters(config) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in BiLM(Settings.from_config(config).model.bilm_options()).parameters())


def test_a_config_without_model_trains_the_small_biLM_on_a_cpu_and_says_so(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", n_train=100, n_dev=10)
    text = TINY_CONFIG.read_text(encoding="utf8")
    start, end = text.index("[model]"), text.index("[softmax]")
    config = tmp_path / "no_model.cfg"
    config.write_text(text[:start] + text[end:], encoding="utf8")
    args = pretrain_args(corpus, tmp_path / "elmo", "--training.max_steps", 1, "--training.eval_every", 0,
                         "--training.checkpoint_every", 0)
    args[1] = str(config)
    assert run_cli(*args) == 0
    printed = " ".join(output_of(capsys).split())
    assert "sets no [model]: on a CPU that is the small biLM of configs/pretrain_small.cfg" in printed
    n = _n_parameters(load_config(None, {"training.max_steps": 1}, on_gpu=False))
    architecture = f"Architecture ([model]): biLM lstm_dim 512 x 2 layers, projection_dim 128, 5 char filter widths (384 filters), 1 highway: {n / 1e6:.2f}M parameters"
    assert architecture in printed
    assert printed.index(architecture) < printed.index("Corpus ")  # said before the corpus is read
    written = Config().from_disk(tmp_path / "elmo" / "config.cfg")
    assert {key: written["model"][key] for key in CPU_MODEL} == CPU_MODEL


def test_the_cpu_default_is_the_small_config_and_a_gpu_keeps_the_original():
    small = Config().from_disk(ROOT / "configs" / "pretrain_small.cfg")["model"]
    assert CPU_MODEL == {key: value for key, value in small.items() if key != "dropout"}
    original = load_config(None, {"training.max_steps": 1}, on_gpu=True)
    assert original["model"] == Config().from_str(DEFAULT_CONFIG)["model"]
    assert round(_n_parameters(original) / 1e6, 1) == 93.6
    # a config that sets its own architecture keeps it on any device
    assert load_config(TINY_CONFIG, on_gpu=False)["model"] == load_config(TINY_CONFIG)["model"]


def test_every_run_says_its_architecture_and_parameter_count(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus", n_train=100, n_dev=10)
    assert run_cli(*pretrain_args(corpus, tmp_path / "elmo", "--training.max_steps", 1, "--training.eval_every", 0)) == 0
    n = _n_parameters(load_config(TINY_CONFIG))
    assert f"Architecture ([model]): biLM lstm_dim 64 x 2 layers, projection_dim 32, 3 char filter widths (64 filters), " \
           f"1 highway: {n / 1e6:.2f}M parameters" in output_of(capsys)
