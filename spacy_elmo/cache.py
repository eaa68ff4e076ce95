"""Activations kept across training epochs: the frozen biLM gives the same layers for the same tokens."""
import hashlib
from collections import OrderedDict
from typing import Optional, Sequence

import numpy


class ActivationCache:
    """LRU of per-sequence activations keyed by a digest of the token texts, bounded by total tokens.
    Valid because the biLM is frozen and stateless: the same tokens always give the same layers."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max(0, int(max_tokens))
        self._items: "OrderedDict[bytes, numpy.ndarray]" = OrderedDict()
        self.n_tokens = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(words: Sequence[str]) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for word in words:
            data = word.encode("utf8", "surrogatepass")
            digest.update(len(data).to_bytes(4, "little"))
            digest.update(data)
        return digest.digest()

    def get(self, key: bytes) -> Optional[numpy.ndarray]:
        if not self.max_tokens:
            return None
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: bytes, value: numpy.ndarray) -> None:
        n = value.shape[1]
        if not self.max_tokens or n > self.max_tokens or key in self._items:
            return
        self._items[key] = value
        self.n_tokens += n
        while self.n_tokens > self.max_tokens:
            _, old = self._items.popitem(last=False)
            self.n_tokens -= old.shape[1]

    def resize(self, max_tokens: int) -> None:
        """Keep at most max_tokens from now on (0 turns the cache off and empties it)."""
        self.max_tokens = max(0, int(max_tokens))
        while self.n_tokens > self.max_tokens:
            _, old = self._items.popitem(last=False)
            self.n_tokens -= old.shape[1]

    def clear(self) -> None:
        self._items.clear()
        self.n_tokens = 0
