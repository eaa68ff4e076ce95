"""The settings a run trains with are resolved once, before anything is written: what runs is what they say."""
import dataclasses

import pytest
import torch

from spacy_elmo.pretrain.config import load_config
from spacy_elmo.pretrain.distributed import DistContext
from spacy_elmo.pretrain.output import OutputFolder
from spacy_elmo.pretrain.progress import Progress
from spacy_elmo.pretrain.train import make_plan
from tests.pretrain.helpers import TINY_CONFIG, make_corpus


@pytest.mark.parametrize("flags,expected", [(frozenset({"avx512f", "avx512_bf16"}), "bf16"), (frozenset({"avx2"}), "fp32")])
def test_the_plan_says_the_precision_that_runs_and_the_config_keeps_auto(tmp_path, monkeypatch, flags, expected):
    import spacy_elmo.bilm.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    corpus = make_corpus(tmp_path / "corpus", n_train=20, n_dev=5)
    config = load_config(TINY_CONFIG, {"paths.train": str(corpus["train"]), "training.precision": "auto"})
    out = tmp_path / "elmo"
    folder = OutputFolder(out, is_main=True)
    lines = []
    try:
        plan = make_plan(config, folder, resume=False, overwrite=False, ctx=DistContext(device=torch.device("cpu")),
                         progress=Progress(out, True, lines.append))
    finally:
        folder.release()
    assert plan.settings.training.precision == expected and plan.config["training"]["precision"] == "auto"
    assert f"training.precision auto -> {expected}" in lines[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.settings = plan.settings  # type: ignore[misc]
    assert [p.name for p in out.iterdir()] == []  # planning writes nothing into the folder
