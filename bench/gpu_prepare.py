"""Prepare, on a machine with network, what a GPU machine without a package registry needs (all under `.gpu/`).

    python bench/gpu_prepare.py wheels   # .gpu/wheels: spaCy + the deps a torch/CuPy image lacks, this package
    python bench/gpu_prepare.py data     # .gpu/fixtures (bilm-tf reference files), .gpu/check (CoNLL ci slices)
    python bench/gpu_prepare.py all

GPU machines of this project have Python 3.12 with torch, CuPy, numpy, h5py, typer, requests, jinja2 and
tqdm, but not spaCy. The wheels are pinned to the versions installed in the environment running this script
(the tested combination), for cp312 manylinux x86_64, one version each. Their extension modules are
stripped of debug info (spaCy's cp312 wheel is 35 MB, 6.6 MB stripped) so the folder travels with the
working tree (`carry`, 64 MiB in all). bench/gpu_env.sh installs them on the GPU machine.
"""
import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

# Distributions spaCy 3.8 imports (spacy train / evaluate / load, weasel's CLI included) that a GPU image
# with torch + CuPy lacks. Never numpy, torch, h5py or typer: the image's builds must stay in charge.
GPU_MISSING = [
    "spacy", "spacy-legacy", "spacy-loggers", "thinc", "blis", "murmurhash", "cymem", "preshed", "srsly",
    "catalogue", "confection", "wasabi", "weasel", "pydantic", "pydantic-core", "annotated-types",
    "typing-inspection", "typing-extensions", "cloudpathlib", "smart-open", "wrapt",
    # weasel's CLI (imported by spacy.cli) imports httpx
    "httpx", "httpcore", "h11", "anyio",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
FIXTURE_FILES = ["options.json", "lm_weights.hdf5", "sentences.json",
                 "lm_embeddings_0.hdf5", "lm_embeddings_1.hdf5", "lm_embeddings_2.hdf5"]
GPU_DIR = ROOT / ".gpu"
CACHE = ROOT / ".cache"


def run(cmd: List[str]) -> None:
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def strip_wheel(src: Path, dest: Path) -> None:
    """Copy a wheel with its .so files stripped of debug info and RECORD rewritten to match."""
    strip = shutil.which("strip")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        lines = []
        for info in zin.infolist():
            if info.filename == record_name or info.is_dir():
                continue
            data = zin.read(info)
            if strip and info.filename.endswith(".so"):
                with tempfile.NamedTemporaryFile(suffix=".so", delete=False) as tmp:
                    tmp.write(data)
                try:
                    # --strip-debug keeps the symbol tables: only DWARF goes (most of the size)
                    subprocess.run([strip, "--strip-debug", tmp.name], check=True)
                    data = Path(tmp.name).read_bytes()
                finally:
                    os.unlink(tmp.name)
            out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            out.external_attr = info.external_attr
            out.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(out, data)
            lines.append(record_line(info.filename, data))
        lines.append(f"{record_name},,")
        zout.writestr(record_name, "\n".join(lines) + "\n")


def wheels(dest: Path, python_version: str) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in GPU_MISSING]
    py = python_version.replace(".", "")
    raw = CACHE / f"gpu-wheels-raw-cp{py}"
    raw.mkdir(parents=True, exist_ok=True)
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python_version,
         "--implementation", "cp", *platform_args, "--no-deps", "-d", raw, *pins])
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    for pin in pins:
        name, version = pin.split("==")
        stem = f"{name.replace('-', '_').lower()}-{version}-"
        found = [w for w in raw.glob("*.whl") if w.name.lower().startswith(stem)]
        # one version of each; prefer this Python's tag over abi3 / py3 if pip kept several
        found.sort(key=lambda w: (f"cp{py}-cp{py}" not in w.name, w.name))
        if not found:
            raise SystemExit(f"no wheel for {pin} in {raw}")
        strip_wheel(found[0], dest / found[0].name)
    # this package: built from the working tree; its dist-info carries the spaCy entry points
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp, ROOT])
        for wheel in Path(tmp).glob("spacy_elmo-*.whl"):
            shutil.copy(wheel, dest / wheel.name)
    (dest / "pins.txt").write_text("\n".join(pins) + "\n", encoding="utf8")
    total = sum(w.stat().st_size for w in dest.glob("*.whl"))
    print(f"{len(list(dest.glob('*.whl')))} wheels in {dest}: {total / 1e6:.1f} MB", flush=True)


def fixtures(dest: Path) -> None:
    """bilm-tf's reference files from the allennlp==0.9.0 wheel (the cache tests/conftest.py uses)."""
    cache = Path(os.environ.get("SPACY_ELMO_TEST_CACHE", Path.home() / ".cache" / "spacy-elmo-tests"))
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / "allennlp-0.9.0-py3-none-any.whl"
    if not wheel.exists():
        run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "allennlp==0.9.0", "-d", cache])
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in FIXTURE_FILES:
            (dest / name).write_bytes(archive.read(f"allennlp/tests/fixtures/elmo/{name}"))
    print(f"bilm-tf fixtures in {dest}", flush=True)


def data(dest: Path) -> None:
    """CoNLL-2003 at the project's ci slice sizes (the same data and limits as `--vars.size ci`)."""
    from presets import options, preset

    assets = CACHE / "gpu-assets"
    run([sys.executable, ROOT / "scripts" / "fetch_assets.py", assets, "--only", "conll2003"])
    run([sys.executable, ROOT / "scripts" / "prepare_conll.py", assets / "conll2003", dest / "conll2003",
         *options(preset("ci")["conll"])])
    sizes = {p.name: p.stat().st_size for p in sorted((dest / "conll2003").glob("*.spacy"))}
    print(f"CoNLL ci slices in {dest / 'conll2003'}: {json.dumps(sizes)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["wheels", "data", "all"])
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (wheel tags)")
    parser.add_argument("--dest", type=Path, default=GPU_DIR, help="folder that gets wheels/, fixtures/, check/")
    args = parser.parse_args()
    if args.what in ("wheels", "all"):
        wheels(args.dest / "wheels", args.python_version)
    if args.what in ("data", "all"):
        fixtures(args.dest / "fixtures")
        data(args.dest / "check")  # the GPU demo prepares its own data: make gpu-demo-data
    total = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"{args.dest}: {total / 2**20:.1f} MiB in all", flush=True)


if __name__ == "__main__":
    main()
