"""spacy-elmo.WeightsLoader.v1 lives in Thinc's `model_loaders` registry, where spacy-curated-transformers
creates it (`thinc.registry.create("model_loaders", entry_points=True)` at its import): the same entries
whichever package comes first, and found through the entry point group that registry reads."""
import subprocess
import sys

import pytest
from thinc.api import ConfigValidationError

from spacy_elmo.layers import BiLMModel, get_bilm
from spacy_elmo.layers.loaders import create_weights_loader

# What spacy-curated-transformers' util.py runs when it is imported.
CURATED_IMPORT = 'import thinc; thinc.registry.create("model_loaders", entry_points=True)'


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_found_through_the_entry_point_of_thinc_s_registry():
    """Nothing of spacy_elmo imported: the registry as another package creates it finds the loader by name."""
    code = CURATED_IMPORT + "; from spacy.util import registry; print(registry.model_loaders.get('spacy-elmo.WeightsLoader.v1').__module__)"
    assert _run(code) == "spacy_elmo.layers.loaders"


@pytest.mark.parametrize("first", ["spacy_elmo", "curated"])
def test_one_registry_whichever_creates_it_first(first):
    steps = {"spacy_elmo": "import spacy_elmo.layers", "curated": CURATED_IMPORT}
    order = [steps[first], *(step for name, step in steps.items() if name != first)]
    code = "; ".join(order) + (
        "; import thinc; from spacy.util import registry; "
        "thinc.registry.model_loaders('another-package.Loader.v1', func=print); "
        "print(registry.model_loaders.get('another-package.Loader.v1') is print, "
        "thinc.registry.model_loaders.get('spacy-elmo.WeightsLoader.v1').__name__)"
    )
    assert _run(code) == "True create_weights_loader"


def test_the_loader_fills_the_layer(tiny_weights_dir):
    model = BiLMModel()
    assert get_bilm(model) is None
    create_weights_loader(tiny_weights_dir)(model)
    assert get_bilm(model) is not None and model.get_dim("nO") == 16


def test_a_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigValidationError, match="weights_loader"):
        create_weights_loader(tmp_path / "nowhere")
