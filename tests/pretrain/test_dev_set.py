"""spacy_elmo.pretrain.dev_set: evaluations compare only on the same dev text."""
from spacy_elmo.pretrain.dev_set import dev_digest, on_last_dev_set, same_dev_set


def test_the_digest_tells_token_boundaries_and_order_apart():
    base = dev_digest([["a", "b"], ["c"]])
    assert base == dev_digest([["a", "b"], ["c"]])
    assert len({base, dev_digest([["ab"], ["c"]]), dev_digest([["c"], ["a", "b"]]), dev_digest([["a", "b"]])}) == 4


def test_rows_without_a_digest_compare_by_their_number_of_targets():
    old, new = {"n_targets": 100}, {"n_targets": 100, "dev_digest": "x"}
    assert same_dev_set(old, new) and not same_dev_set(old, {"n_targets": 101, "dev_digest": "x"})
    assert not same_dev_set({"n_targets": 100, "dev_digest": "x"}, {"n_targets": 100, "dev_digest": "y"})


def test_only_the_last_dev_sets_evaluations_are_kept():
    history = [{"step": 0, "n_targets": 10, "dev_digest": "a"}, {"step": 4, "n_targets": 10, "dev_digest": "a"},
               {"step": 8, "n_targets": 40, "dev_digest": "b"}]
    assert [h["step"] for h in on_last_dev_set(history)] == [8]
    assert [h["step"] for h in on_last_dev_set(history[:2])] == [0, 4] and on_last_dev_set([]) == []
