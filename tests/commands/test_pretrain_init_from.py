"""`python -m spacy_elmo pretrain --init-from DIR`: continue training a biLM in bilm-tf's layout on new text
(domain adaptation), with a vocabulary from the new corpus and a new softmax."""
import json
import random
import shutil
from pathlib import Path
from typing import Dict

import numpy
import pytest

from spacy_elmo import load_bilm, save_bilm
from spacy_elmo.pretrain.checkpoint import load_checkpoint
from spacy_elmo.pretrain.synthetic import sentence
from tests.conftest import random_bilm
from tests.pretrain.helpers import log_rows, make_corpus, pretrain_args, output_of, read_hdf5, run_cli

QUIET = ("--training.checkpoint_every", "0", "--training.log_every", "10")
SENTENCES = [["the", "cat", "sees", "a", "song", "."], ["two", "happy", "dogs", "cross", "the", "river", "."], ["robots"]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("domain_a"), n_train=1500, n_dev=150)


def _domain_b(directory: Path, n_train: int = 1500, n_dev: int = 150) -> Dict[str, Path]:
    """Another "domain": the grammar's sentences with their words in reverse order and new nouns, so the
    forward LM of domain A predicts it badly until the biLM itself adapts."""
    new_nouns = {"cat": "nurse", "dog": "engineer", "bird": "senator", "cats": "nurses", "dogs": "engineers",
                 "birds": "senators", "apple": "report", "book": "contract"}
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 11), ("dev", n_dev, 12)):
        rng = random.Random(seed)
        lines = []
        for _ in range(n):
            words = [new_nouns.get(w, w) for w in sentence(rng)[:-1]]
            lines.append(" ".join(words[::-1] + ["."]))
        out[split] = directory / f"{split}.txt"
        out[split].write_text("\n".join(lines) + "\n", encoding="utf8")
    return out


def _metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text(encoding="utf8"))


def _same_bilm(a: Path, b: Path) -> None:
    """Every biLM dataset of a's weights.hdf5 is in b's, bit for bit (the softmax is b's own); the loaded
    biLMs give the same outputs."""
    arrays_a, arrays_b = read_hdf5(a / "weights.hdf5"), read_hdf5(b / "weights.hdf5")
    assert {k for k in arrays_a if not k.startswith("softmax/")} == {k for k in arrays_b if not k.startswith("softmax/")}
    for key, array in arrays_a.items():
        if key.startswith("softmax/"):
            continue
        assert arrays_b[key].dtype == array.dtype and numpy.array_equal(arrays_b[key], array), key
    bilm_a = load_bilm(a / "options.json", a / "weights.hdf5")
    bilm_b = load_bilm(b / "options.json", b / "weights.hdf5")
    assert bilm_a.options.to_dict()["lstm"] == bilm_b.options.to_dict()["lstm"]
    assert bilm_a.options.to_dict()["char_cnn"] == bilm_b.options.to_dict()["char_cnn"]
    for x, y in zip(bilm_a.embed_sentences(SENTENCES), bilm_b.embed_sentences(SENTENCES)):
        assert numpy.array_equal(x, y)


def test_zero_bilm_steps_export_a_bilm_bit_equal_to_the_input(corpus, tiny_weights_dir, tmp_path, capsys):
    """Published-style input (save_bilm: no softmax, no vocab.txt) whose architecture differs from the
    config's: options.json wins and says so; every step trains the softmax only."""
    out = tmp_path / "adapted"
    code = run_cli(*pretrain_args(corpus, out, "--init-from", tiny_weights_dir, "--training.max_steps", 3,
                                  "--training.freeze_bilm_steps", 3, "--training.eval_every", 0, *QUIET))
    printed = output_of(capsys)
    assert code == 0, printed
    assert "lstm_dim 64 -> 24" in printed and "projection_dim 32 -> 8" in printed
    _same_bilm(tiny_weights_dir, out)
    arrays = read_hdf5(out / "weights.hdf5")
    vocab = (out / "vocab.txt").read_text(encoding="utf8").splitlines()
    assert arrays["softmax/W"].shape == (len(vocab), 8)  # a new softmax over the new corpus's vocabulary
    options = json.loads((out / "options.json").read_text(encoding="utf8"))
    assert options["init_from"] == str(tiny_weights_dir) and options["n_tokens_vocab"] == len(vocab)
    config = (out / "config.cfg").read_text(encoding="utf8")
    assert "lstm_dim = 24" in config and f"init_from = \"{tiny_weights_dir}\"" in config
    assert _metrics(out)["step"] == 3


def test_a_bilm_tf_weight_file_comes_back_bit_equal(corpus, bilm_tf_fixtures, tmp_path):
    """A file written by bilm-tf itself (allennlp's test fixture, TF's dataset layout, no softmax)."""
    published = tmp_path / "published"
    published.mkdir()
    shutil.copy(bilm_tf_fixtures / "options.json", published / "options.json")
    shutil.copy(bilm_tf_fixtures / "lm_weights.hdf5", published / "weights.hdf5")
    out = tmp_path / "adapted"
    assert run_cli(*pretrain_args(corpus, out, "--init-from", published, "--training.max_steps", 2,
                                  "--training.freeze_bilm_steps", 2, "--training.eval_every", 0, *QUIET)) == 0
    _same_bilm(published, out)


def test_init_from_starts_from_the_weights_and_then_trains_them(corpus, tiny_weights_dir, tmp_path):
    out = tmp_path / "adapted"
    assert run_cli(*pretrain_args(corpus, out, "--init-from", tiny_weights_dir, "--training.max_steps", 2,
                                  "--training.eval_every", 0, *QUIET)) == 0
    before, after = read_hdf5(tiny_weights_dir / "weights.hdf5"), read_hdf5(out / "weights.hdf5")
    changed = [key for key in before if not numpy.array_equal(before[key], after[key])]
    assert "RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0" in changed and "CNN_proj/W_proj" in changed
    # Two Adam steps of lr 0.01 move each weight by at most about 0.02: the start was the file's weights,
    # not a new random biLM (whose weights would differ by about 0.5).
    assert max(float(numpy.abs(before[k] - after[k]).max()) for k in before) < 0.05
    rows = log_rows(out)
    assert [r["path"] for r in rows if r["event"] == "init_from"] == [str(tiny_weights_dir)]


@pytest.fixture(scope="module")
def domain_a_bilm(corpus, tmp_path_factory):
    """The tiny config pretrained briefly on domain A (full softmax: weights.hdf5 holds softmax/W, b)."""
    out = tmp_path_factory.mktemp("general") / "elmo"
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 80, "--training.eval_every", 0, *QUIET)) == 0
    return out


def test_adaptation_lowers_dev_perplexity_on_the_new_domain(domain_a_bilm, tmp_path, capsys):
    """The fair comparison: the same vocabulary (domain B's), the same steps and the same softmax warm-up.
    Frozen for all 40 steps, the softmax is the only thing trained on domain A's biLM (the starting biLM's
    perplexity on B; its biLM is exported bit-equal); adapted, the biLM trains too after 10 steps."""
    b = _domain_b(tmp_path / "domain_b")
    common = ["--init-from", domain_a_bilm, "--training.max_steps", 40, "--training.eval_every", 0, "--softmax.reuse", "false", *QUIET]
    frozen, adapted = tmp_path / "frozen", tmp_path / "adapted"
    assert run_cli(*pretrain_args(b, frozen, *common, "--training.freeze_bilm_steps", 40)) == 0
    assert run_cli(*pretrain_args(b, adapted, *common, "--training.freeze_bilm_steps", 10)) == 0
    _same_bilm(domain_a_bilm, frozen)
    start, end = _metrics(frozen)["dev"], _metrics(adapted)["dev"]
    assert (frozen / "vocab.txt").read_bytes() == (adapted / "vocab.txt").read_bytes()
    assert start["n_targets"] == end["n_targets"]
    with capsys.disabled():
        print(f"\ndomain B dev perplexity: domain A's biLM + 40 softmax steps {start['perplexity']:.2f}; "
              f"adapted (10 softmax + 30 full steps) {end['perplexity']:.2f}")
    assert end["perplexity"] < 0.8 * start["perplexity"], (start, end)
    assert end["forward_perplexity"] < start["forward_perplexity"]


def test_an_earlier_runs_softmax_is_reused_for_the_tokens_of_its_vocabulary(domain_a_bilm, corpus, tmp_path):
    """Continuing this tool's own output with its vocab.txt: the run starts exactly where that one ended
    (step-0 dev perplexity equal to its exported one); without softmax.reuse it starts from a new softmax."""
    extra = ["--init-from", domain_a_bilm, "--paths.vocab", domain_a_bilm / "vocab.txt", "--training.max_steps", 1,
             "--training.freeze_bilm_steps", 1, "--training.eval_every", 1, *QUIET]
    assert run_cli(*pretrain_args(corpus, tmp_path / "reused", *extra)) == 0
    assert run_cli(*pretrain_args(corpus, tmp_path / "fresh", *extra, "--softmax.reuse", "false")) == 0
    ended = _metrics(domain_a_bilm)["dev"]["perplexity"]
    assert _metrics(tmp_path / "reused")["history"][0]["perplexity"] == pytest.approx(ended, rel=1e-5)
    assert _metrics(tmp_path / "fresh")["history"][0]["perplexity"] > 3 * ended
    rows = log_rows(tmp_path / "reused")
    n_vocab = len((domain_a_bilm / "vocab.txt").read_text(encoding="utf8").splitlines())
    assert [r["softmax_rows_reused"] for r in rows if r["event"] == "init_from"] == [n_vocab]


def test_resume_continues_the_checkpoint_and_never_reads_init_from_again(corpus, tmp_path, capsys):
    """Stopped during the softmax-only warm-up and resumed: the same weights as a run straight through."""
    source = save_bilm(random_bilm(seed=3), tmp_path / "source")
    common = ["--init-from", source, "--training.freeze_bilm_steps", 2, "--training.eval_every", 0,
              "--training.log_every", 1, "--training.checkpoint_every", 0]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(*pretrain_args(corpus, straight, *common, "--training.max_steps", 6)) == 0
    assert run_cli(*pretrain_args(corpus, split, *common, "--training.max_steps", 1)) == 0
    # DIR replaced by another biLM of the same shape, then removed: a resumed run must not re-init from it.
    save_bilm(random_bilm(seed=4), source)
    assert run_cli(*pretrain_args(corpus, split, *common, "--training.max_steps", 6, "--resume")) == 0
    shutil.rmtree(source)
    a, b = read_hdf5(straight / "weights.hdf5"), read_hdf5(split / "weights.hdf5")
    assert a.keys() == b.keys() and all(numpy.array_equal(a[key], b[key]) for key in a)
    assert load_checkpoint(split)["state"]["step"] == 6
    # Resuming without --init-from is a different config: refused, naming it.
    capsys.readouterr()
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 8, "--resume")) == 1
    text = " ".join(output_of(capsys).split())
    assert "differs from the checkpoint's in: " in text and "paths.init_from" in text


def _fails(capsys, *args) -> str:
    code = run_cli(*args)
    text = " ".join(output_of(capsys).split())
    assert code == 1, text
    return text


def test_unusable_init_from_folders_are_refused_before_anything_is_written(corpus, tiny_weights_dir, tmp_path, capsys):
    out = tmp_path / "out"
    quick = ["--training.max_steps", 1, "--training.eval_every", 0]
    text = _fails(capsys, *pretrain_args(corpus, out, "--init-from", tmp_path / "nowhere", *quick))
    assert "no such directory" in text
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_weights_dir / "options.json", partial / "options.json")
    text = _fails(capsys, *pretrain_args(corpus, out, "--init-from", partial, *quick))
    assert "has no weights.hdf5" in text
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_weights_dir, mismatched)
    options = json.loads((mismatched / "options.json").read_text(encoding="utf8"))
    options["lstm"]["dim"] = 32
    (mismatched / "options.json").write_text(json.dumps(options), encoding="utf8")
    text = _fails(capsys, *pretrain_args(corpus, out, "--init-from", mismatched, *quick))
    assert "W_0" in text and "expected" in text and "Traceback" not in text
    assert not out.exists()
    before = {p.name: p.read_bytes() for p in tiny_weights_dir.iterdir()}
    for resume in ([], ["--resume"]):
        text = _fails(capsys, *pretrain_args(corpus, tiny_weights_dir, "--init-from", tiny_weights_dir, *quick, *resume))
        assert "is --output itself" in text
    assert {p.name: p.read_bytes() for p in tiny_weights_dir.iterdir()} == before


def test_precision_auto_holds_when_init_from_replaces_the_architecture(corpus, tiny_weights_dir, tmp_path, monkeypatch):
    """--init-from rebuilds the training settings from the config (its options.json sets [model]); "auto"
    must still be resolved for the steps that run (it once reached autocast unresolved, i.e. as fp16)."""
    import spacy_elmo.bilm.precision as precision
    from spacy_elmo.pretrain import train

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    seen = []
    original = train.autocast

    def recording(precision, device):
        seen.append(precision)
        return original(precision, device)

    monkeypatch.setattr(train, "autocast", recording)
    out = tmp_path / "adapted_auto"
    assert run_cli(*pretrain_args(corpus, out, "--init-from", tiny_weights_dir, "--training.max_steps", 2,
                                  "--training.precision", "auto", "--training.eval_every", 0, *QUIET)) == 0
    assert seen and set(seen) == {"fp32"}
    assert _metrics(out)["precision"] == "fp32"


def test_init_from_refuses_a_softmax_kept_in_an_outside_file(domain_a_bilm, tmp_path, capsys):
    """softmax/W and softmax/b are read from an untrusted folder too: held to the weights' rules, one stored
    in another file (external= storage) is refused by name and none of that file's bytes reach the model."""
    import h5py

    hostile = tmp_path / "hostile"
    shutil.copytree(domain_a_bilm, hostile)
    with h5py.File(hostile / "weights.hdf5", "a") as f:
        shape, dtype = f["softmax/W"].shape, f["softmax/W"].dtype
        secret = tmp_path / "secret.bin"
        secret.write_bytes(numpy.full(shape, 7.0, dtype=dtype).tobytes())
        del f["softmax/W"]
        f.create_dataset("softmax/W", shape=shape, dtype=dtype, external=[(str(secret), 0, secret.stat().st_size)])
    out = tmp_path / "out"
    code = run_cli(*pretrain_args(_domain_b(tmp_path / "b"), out, "--init-from", hostile, "--training.max_steps", 2,
                                  "--training.eval_every", 0, *QUIET))
    message = output_of(capsys)
    assert code == 1 and "softmax/W" in message and "external file" in message, message
    assert not (out / "weights.hdf5").exists()
