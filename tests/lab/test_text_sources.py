"""lab/text_sources.py's format parsers and archive readers on small inputs made here, in the formats of the
real sources (no network, no registry)."""
import bz2
import gzip
import hashlib
import importlib.util
import io
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"


def load_lab(name: str):
    spec = importlib.util.spec_from_file_location(f"lab_{name}", LAB / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ts = load_lab("text_sources")


def _tar(files: Dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _ar(members: Dict[str, bytes]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members.items():
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode("ascii") + b"`\n"
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _lzw_literals(data: bytes) -> bytes:
    """A valid Unix `compress` stream (magic 1f 9d, block mode, 16 bits) that codes every byte as a literal:
    9-bit codes, packed from the low bit. Fewer than 256 codes never widen the code, so it stays that simple."""
    assert len(data) < 250
    bits = value = 0
    out = bytearray(b"\x1f\x9d\x90")
    for byte in data:
        value |= byte << bits
        bits += 9
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    return bytes(out)


def _brs(windows: List[bytes]) -> bytes:
    """bible.data's container around LZW windows: magic, header (0, window size, count) at 0x50, offsets."""
    streams = [_lzw_literals(w) for w in windows]
    header_end = 0x5C + 4 * (len(windows) + 1)
    offsets, pos = [], header_end + 3
    for stream in streams:
        offsets.append(pos)
        pos += len(stream) - 3
    offsets.append(pos)
    head = ts.BRS_MAGIC.ljust(0x50, b"\0") + struct.pack(">3I", 0, 65536, len(windows))
    head += struct.pack(f">{len(offsets)}I", *offsets)
    return head + b"\x1f\x9d\x90" + b"".join(s[3:] for s in streams)


def test_parliament_csv_speeches_repaired() -> None:
    csv_text = ('"date","agenda","speechnumber","speaker","party","party.facts.id","chair","terms","text","parliament",'
                '"iso3country","parlspeech_row"\n'
                '"2015-10-12","Hate Speech",64,"A Member","Con",1567,FALSE,28,"It costs \u00c2\u00a310 a year.\n'
                'It said:\u00e2\u20ac\u0153Yes\u00e2\u20ac\x9dAnd 7\u00b75 per cent.","UK-HouseOfCommons","GBR","1"\n'
                '"2015-10-12","x",65,"B","Lab",1,FALSE,28,"  ","UK-HouseOfCommons","GBR","2"\n')
    units = list(ts.parliament_units(csv_text.encode("utf-8")))
    assert units == ["It costs \u00a310 a year. It said: \u201cYes\u201d And 7.5 per cent."]


def test_brown_tags_stripped_quotes_restored() -> None:
    text = ("\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ./.\n\n\n"
            "\tAtlanta's/np$ 1/2/cd share/nn ,/, he/pps said/vbd ./.\n\n")
    assert list(ts.brown_units(text)) == ['The jury said " no evidence " .', "Atlanta's 1/2 share , he said ."]
    assert list(ts.sentences(ts.brown_units(text))) == ['The jury said " no evidence " .',
                                                        "Atlanta 's 1/2 share , he said ."]


def test_wordnet_glosses_and_examples() -> None:
    text = ("  1 This software and database is being provided to you, the LICENSEE, by  \n"
            "00002724 29 v 01 choke 0 002 @ 00001740 v 0000 01 + 02 00 | breathe with great difficulty; "
            "\"She choked; she wept\"; \"to be or not\" - Shakespeare  \n"
            "00001740 03 n 01 entity 0 000 | that which exists  \n")
    assert list(ts.wordnet_units(text)) == ["breathe with great difficulty", "She choked; she wept", "to be or not",
                                            "that which exists"]


def test_kjv_container_and_verses() -> None:
    first = b"Holy Bible, Authorized (King James) Version.\nGe1:1 In the beginning God created the heaven. "
    second = b"And it was.\n1Sa2:3 Talk no more.\nSSol1:1 The song of songs.\n"
    text = ts.brs_decompress(_brs([first, second]))
    assert text == (first + second).decode("ascii")
    assert list(ts.kjv_units(text)) == ["In the beginning God created the heaven. And it was.", "Talk no more.",
                                        "The song of songs."]
    with pytest.raises(ts.ArchiveError):
        ts.brs_decompress(b"not a bible" * 20)


def test_rst_keeps_prose_only() -> None:
    rst = """.. SPDX-License-Identifier: GPL-2.0

=============
Kernel things
=============

This is the first paragraph, with ``literal`` words
and a :ref:`link to docs <docs>` that continue here.

.. note::

   A note body that is a directive.

Use the command below::

    $ make -j8 all

- A bullet item that is prose about
  the kernel and its parts.
- short

+--------+--------+
| table  | cell   |
+--------+--------+

struct foo *bar = baz(0x10); return qux();
"""
    assert list(ts.rst_units(rst)) == [
        "This is the first paragraph, with literal words and a link to docs that continue here.",
        "Use the command below:",
        "A bullet item that is prose about the kernel and its parts.",
    ]


def test_wikitext_markup_stripped() -> None:
    wikitext = """{{Infobox person|name=X|born={{birth date|1900|1|1}}}}
'''Ada''' was a [[mathematician]] and [[writer|author]] from [[London]].<ref>{{cite book|title=T}}</ref> She wrote <!-- hidden --> notes [http://example.org on engines].
[[File:Ada.jpg|thumb|A [[portrait]] of Ada]]

== Life ==
* a list item that is dropped here
{| class="wikitable"
| cell || cell
|}
[[Category:Mathematicians]]
"""
    assert list(ts.wikitext_units(wikitext)) == [
        "Ada was a mathematician and author from London. She wrote notes on engines."]
    xml = ("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\"><page><title>Ada</title><ns>0</ns>"
           "<revision><text>'''Ada''' was a [[mathematician]] who wrote many long notes.</text></revision></page>"
           "<page><title>AccessibleComputing</title><ns>0</ns><redirect title=\"Computer accessibility\" />"
           "<revision><text>#REDIRECT [[Computer accessibility]] and more words here</text></revision></page>"
           "<page><title>Talk:Ada</title><ns>1</ns><revision><text>A talk page with enough words.</text></revision>"
           "</page></mediawiki>")
    assert list(ts.wiki_units(xml.encode("utf-8"))) == ["Ada was a mathematician who wrote many long notes."]


def test_archives_read_in_memory_and_unsafe_names_refused(tmp_path: Path) -> None:
    data = _tar({"./usr/share/wordnet/data.noun": b"n", "./usr/share/wordnet/other": b"o"}, mode="w:xz")
    deb = tmp_path / "x.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": data}))
    assert ts.deb_members(deb, lambda n: n in ts.WORDNET_MEMBERS) == {"usr/share/wordnet/data.noun": b"n"}
    assert not (tmp_path / "usr").exists()  # nothing is extracted to disk
    for bad in ("../etc/passwd", "/etc/passwd", "package/../../x"):
        with pytest.raises(ts.ArchiveError):
            ts.tar_members(_tar({bad: b"x"}), lambda n: True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/../../b.txt", "x")
    with pytest.raises(ts.ArchiveError):
        ts.zip_members(buffer.getvalue(), lambda n: True)
    with pytest.raises(ts.ArchiveError):
        ts.ar_members(b"not an ar archive")


def test_fetch_checks_the_pinned_sha256(tmp_path: Path) -> None:
    pinned = ts.Download("pip", "x==1", "x-1.whl", hashlib.sha256(b"good").hexdigest())
    (tmp_path / "x-1.whl").write_bytes(b"good")
    assert ts.fetch(pinned, tmp_path) == tmp_path / "x-1.whl"
    assert "x-1.whl" in (tmp_path / "checksums.json").read_text()
    (tmp_path / "x-1.whl").write_bytes(b"substituted")
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        ts.fetch(pinned, tmp_path)


def test_sentences_tokenised_as_the_news(tmp_path: Path) -> None:
    lines = list(ts.sentences(["Mr. Smith didn't go.  He stayed home!", "   "]))
    assert lines == ["Mr. Smith did n't go .", "He stayed home !"]
    target = tmp_path / "out.txt"
    assert ts.write_lines_atomic(target, lines) == (2, 10)
    assert target.read_text(encoding="utf-8") == "Mr. Smith did n't go .\nHe stayed home !\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left


def test_linuxdoc_members_and_gzip() -> None:
    assert ts.linuxdoc_member("usr/share/doc/linux-doc-6.1/Documentation/process/howto.rst.gz")
    assert not ts.linuxdoc_member("usr/share/doc/linux-doc-6.1/Documentation/translations/it_IT/howto.rst.gz")
    assert not ts.linuxdoc_member("usr/share/doc/linux-doc-6.1/html/_sources/howto.rst.txt")
    text = gzip.decompress(gzip.compress(b"A paragraph of plain kernel prose here.\n")).decode()
    assert list(ts.rst_units(text)) == ["A paragraph of plain kernel prose here."]
    assert bz2.decompress(bz2.compress(b"x")) == b"x"
