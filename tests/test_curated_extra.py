"""spacy-elmo beside spacy-curated-transformers (the `curated` extra): one `model_loaders` registry, Thinc's,
so both packages' weight loaders resolve through spaCy whichever package is imported first."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("spacy_curated_transformers")

CURATED_LOADER = "spacy-curated-transformers.HFTransformerEncoderLoader.v1"

# Run in a fresh interpreter: which package creates the registry depends on the import order of a process.
SCRIPT = """
import importlib, json, sys
for module in sys.argv[2:]:
    importlib.import_module(module)

import thinc
from spacy.util import registry
from thinc.api import Config

from spacy_elmo.layers import BiLMModel, get_bilm

out = {"elmo": callable(registry.model_loaders.get("spacy-elmo.WeightsLoader.v1")),
       "curated": callable(registry.model_loaders.get("%(curated)s"))}
config = Config().from_str('''
[elmo]
@model_loaders = "spacy-elmo.WeightsLoader.v1"
path = "%%s"

[curated]
@model_loaders = "%(curated)s"
name = "not-downloaded-when-resolved"
''' %% sys.argv[1])
resolved = registry.resolve(config)
out["elmo_filled"] = get_bilm(resolved["elmo"](BiLMModel())) is not None
out["curated_resolved"] = callable(resolved["curated"])
# Thinc's own registry holds the same entries once curated has created it.
out["thinc_sees_elmo"] = "spacy-elmo.WeightsLoader.v1" in thinc.registry.model_loaders
print(json.dumps(out))
""" % {"curated": CURATED_LOADER}


@pytest.mark.parametrize(
    "imports",
    [
        ["spacy_elmo", "spacy_curated_transformers"],
        ["spacy_elmo.component", "spacy_curated_transformers"],  # what the `elmo` factory's entry point imports
        ["spacy_curated_transformers", "spacy_elmo.component"],
        ["spacy_curated_transformers.pipeline.transformer", "spacy_elmo"],
    ],
    ids=lambda imports: " then ".join(imports),
)
def test_both_packages_loaders_resolve_in_either_import_order(imports, tiny_weights_dir):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_weights_dir), *imports], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"elmo": True, "curated": True, "elmo_filled": True, "curated_resolved": True, "thinc_sees_elmo": True}

