import json

import pytest

from spacy_elmo.pretrain.corpus import Corpus, CorpusError, batches_by_tokens
from spacy_elmo.pretrain.vocab import Vocab, build_vocab


def test_lines_format_skips_and_counts_blank_and_undecodable_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"the cat sat .\n\n   \nbad \xff\xfe bytes\nthe dog ran away .\n")
    corpus = Corpus(path)
    assert list(corpus) == [["the", "cat", "sat", "."], ["the", "dog", "ran", "away", "."]]
    assert corpus.stats.blank == 2 and corpus.stats.undecodable == 1 and corpus.stats.sentences == 2
    assert corpus.stats.tokens == 9


def test_directory_is_read_in_order_and_long_sentences_split(tmp_path):
    (tmp_path / "b.txt").write_text("b1 b2\n", encoding="utf8")
    (tmp_path / "a.txt").write_text("a1 a2 a3 a4 a5\n", encoding="utf8")
    corpus = Corpus(tmp_path, max_length=2)
    assert list(corpus) == [["a1", "a2"], ["a3", "a4"], ["a5"], ["b1", "b2"]]
    assert corpus.stats.long_split == 1 and corpus.stats.files == 2
    with pytest.raises(CorpusError, match="not found"):
        Corpus(tmp_path / "missing")


def test_raw_text_and_jsonl_are_tokenised_and_sentence_split_with_spacy(tmp_path):
    (tmp_path / "raw.txt").write_text("Hello world. It's a test!\n\nSecond line here.\n", encoding="utf8")
    sentences = list(Corpus(tmp_path / "raw.txt", fmt="text"))
    assert sentences == [["Hello", "world", "."], ["It", "'s", "a", "test", "!"], ["Second", "line", "here", "."]]
    rows = [{"text": "One two. Three."}, {"tokens": ["pre", "tokenised"]}, "not a record", {"words": ["w"]}]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n", encoding="utf8")
    corpus = Corpus(tmp_path / "data.jsonl")
    assert list(corpus) == [["One", "two", "."], ["Three", "."], ["pre", "tokenised"], ["w"]]
    assert corpus.stats.malformed == 2


def test_docbin_corpus(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    DocBin(docs=[nlp("A first one. And a second.")]).to_disk(tmp_path / "c.spacy")
    no_sents = spacy.blank("en")("Unsplit text. Gets split.")
    DocBin(docs=[no_sents]).to_disk(tmp_path / "d.spacy")
    assert list(Corpus(tmp_path)) == [["A", "first", "one", "."], ["And", "a", "second", "."],
                                      ["Unsplit", "text", "."], ["Gets", "split", "."]]


def test_batches_respect_the_token_budget_cover_everything_and_are_reproducible():
    import random

    rng = random.Random(0)
    sents = [[f"w{i}"] * rng.randint(1, 30) for i in range(500)]
    batches = list(batches_by_tokens(sents, batch_tokens=200, seed=3, buffer_size=128))
    for batch in batches:
        assert len(batch) * (max(map(len, batch)) + 2) <= 200
    assert sorted(map(tuple, (s for b in batches for s in b))) == sorted(map(tuple, sents))
    assert batches == list(batches_by_tokens(sents, batch_tokens=200, seed=3, buffer_size=128))
    assert batches != list(batches_by_tokens(sents, batch_tokens=200, seed=4, buffer_size=128))


def test_vocab_is_frequency_sorted_with_specials_first_and_round_trips(tmp_path):
    vocab = build_vocab([["b", "a", "b"], ["c", "b", "a"], ["d"]], max_size=5)
    assert vocab.tokens == ["<S>", "</S>", "<UNK>", "b", "a"]
    assert vocab.n_sentences == 3
    again = Vocab.from_file(vocab.to_file(tmp_path / "vocab.txt"))
    assert again.tokens == vocab.tokens
    assert (tmp_path / "vocab.txt").read_text(encoding="utf8").splitlines()[:3] == ["<S>", "</S>", "<UNK>"]
    ids = vocab.target_ids([["a", "zzz"], ["b"]])
    assert ids.tolist() == [[0, 4, 2, 1], [0, 3, 1, -100]]
    assert vocab.unigram_perplexity([["b", "a"]]) > 1.0


def test_training_bilm_encodes_each_distinct_token_once_with_identical_outputs():
    import torch

    from spacy_elmo.bilm.chars import batch_to_char_ids
    from spacy_elmo.pretrain.training_bilm import TrainingBiLM
    from tests.conftest import random_bilm

    reference = random_bilm()
    model = TrainingBiLM(reference.options)
    model.load_state_dict(reference.state_dict())
    ids = torch.from_numpy(batch_to_char_ids([["the", "cat", "the", "."], ["the", "."]]))
    calls = []
    model.char_cnn.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    with torch.enable_grad():
        got = model.forward_with_boundaries(ids).activations
    want = reference.forward_with_boundaries(ids).activations
    assert calls == [5]  # <S>, </S>, the, cat, . -- not 10 positions
    assert (got - want).abs().max() < 1e-4 * want.abs().max()
