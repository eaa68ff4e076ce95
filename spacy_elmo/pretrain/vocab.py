"""The vocabulary of LM targets in bilm-tf's vocab.txt format: one token per line, <S>, </S>, <UNK> first,
then tokens by descending frequency (the log-uniform sampler and the adaptive softmax rely on that order)."""
import hashlib
import math
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch

from ..bilm.atomic import atomic_write

BOS, EOS, UNK = "<S>", "</S>", "<UNK>"
SPECIALS = (BOS, EOS, UNK)


class Vocab:
    def __init__(self, tokens: Sequence[str], counts: Optional[Dict[str, int]] = None) -> None:
        tokens = list(tokens)
        if tokens[:3] != list(SPECIALS):
            tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.tokens: List[str] = tokens
        self.index: Dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.counts = counts  # token -> corpus count, when the vocabulary was built here
        self.n_sentences = 0  # sentences counted when built here (for the unigram baseline)
        self.bos, self.eos, self.unk = 0, 1, 2

    def __len__(self) -> int:
        return len(self.tokens)

    def sha256(self) -> str:
        """Identifies the token list (order matters: row i of the softmax is token i)."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf8")).hexdigest()

    def ids(self, sentence: Sequence[str]) -> List[int]:
        get, unk = self.index.get, self.unk
        return [get(t, unk) for t in sentence]

    def target_ids(self, sentences: Sequence[Sequence[str]]) -> torch.Tensor:
        """(B, T + 2) int64: <S> w_1 .. w_n </S> per row, padded with -100 (ignored)."""
        width = max((len(s) for s in sentences), default=0) + 2
        out = torch.full((len(sentences), width), -100, dtype=torch.long)
        for row, sent in enumerate(sentences):
            out[row, : len(sent) + 2] = torch.tensor([self.bos] + self.ids(sent) + [self.eos])
        return out

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_size: int = 0, min_count: int = 1) -> "Vocab":
        counts: Counter = Counter()
        for sent in sentences:
            counts.update(sent)
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, c in ranked if c >= min_count]
        if max_size:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + words, counts=dict(counts))

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "Vocab":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Vocabulary file not found: {path} (bilm-tf vocab.txt: one token per line).")
        tokens = [line.strip() for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
        if not tokens:
            raise ValueError(f"Vocabulary file {path} is empty.")
        return cls(tokens)

    def to_file(self, path: Union[str, Path]) -> Path:
        text = "\n".join(self.tokens) + "\n"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    def unigram_perplexity(self, sentences: Iterable[Sequence[str]]) -> Optional[float]:
        """Perplexity of an add-one unigram model from the training counts on the same targets the LM
        predicts (each token, out-of-vocabulary ones as <UNK>, plus one sentence boundary per sentence)."""
        if self.counts is None:
            return None
        in_vocab = {t: self.counts.get(t, 0) for t in self.tokens[3:]}
        total_tokens = sum(self.counts.values())
        n_unk = total_tokens - sum(in_vocab.values())
        boundary = self.n_sentences or max(1, total_tokens // 20)
        table = dict(in_vocab)
        table[UNK] = n_unk
        table[EOS] = boundary
        denom = sum(table.values()) + len(table)
        log_sum, n = 0.0, 0
        for sent in sentences:
            for tok in list(sent) + [EOS]:
                key = tok if tok in table else UNK
                log_sum -= math.log((table[key] + 1) / denom)
                n += 1
        return math.exp(log_sum / max(1, n))


def build_vocab(sentences: Iterable[Sequence[str]], max_size: int = 0, min_count: int = 1) -> Vocab:
    n = 0

    def counted():
        nonlocal n
        for s in sentences:
            n += 1
            yield s

    vocab = Vocab.build(counted(), max_size=max_size, min_count=min_count)
    vocab.n_sentences = n
    return vocab


__all__ = ["Vocab", "build_vocab", "BOS", "EOS", "UNK", "SPECIALS"]
