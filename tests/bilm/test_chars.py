import numpy

from spacy_elmo.bilm.chars import batch_to_char_ids, bos_char_ids, eos_char_ids, word_to_char_ids


def test_word_ids_match_bilm_tf_layout():
    ids = word_to_char_ids("ab")
    assert ids[:4].tolist() == [259, 98, 99, 260]  # begin-word, 'a'+1, 'b'+1, end-word (all +1)
    assert (ids[4:] == 261).all() and ids.shape == (50,)


def test_boundary_tokens():
    assert bos_char_ids()[:4].tolist() == [259, 257, 260, 261]
    assert eos_char_ids()[:4].tolist() == [259, 258, 260, 261]


def test_long_and_unicode_tokens_are_truncated_bytes():
    word = "ü" * 40  # 80 UTF-8 bytes, more than the 48 that fit
    ids = word_to_char_ids(word)
    assert ids[0] == 259 and ids[49] == 260
    assert ids[1:49].tolist() == [b + 1 for b in word.encode("utf8")[:48]]
    emoji = word_to_char_ids("👍")
    assert emoji[1:5].tolist() == [b + 1 for b in "👍".encode("utf8")] and emoji[5] == 260


def test_batch_padding():
    ids = batch_to_char_ids([["a", "b", "c"], [], ["x"]])
    assert ids.shape == (3, 3, 50)
    assert (ids[1] == 0).all() and (ids[2, 1:] == 0).all() and (ids[2, 0] > 0).all()
    assert numpy.array_equal(batch_to_char_ids([]).shape, (0, 0, 50))
