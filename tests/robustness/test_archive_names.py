"""scripts/fetch_assets.py joins archive member names onto the output folder: only names below it."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_assets.py"


@pytest.fixture(scope="module")
def fetch_assets():
    spec = importlib.util.spec_from_file_location("scripts_fetch_assets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("member", ["data/texts/../../../../etc/evil", "data/texts/sub/../../../evil", "data/texts/a\\..\\..\\evil"])
def test_member_names_that_leave_the_folder_are_not_extracted(fetch_assets, member):
    source = fetch_assets.Source(name="x", package="p", version="1", sha256="0", prefix="data/",
                                 members=["texts/"], n_files=1)
    assert fetch_assets.wanted("data/texts/ok.txt", source) == "texts/ok.txt"
    assert fetch_assets.wanted(member, source) is None
