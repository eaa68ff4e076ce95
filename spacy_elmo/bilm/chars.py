"""Token strings -> ELMo character ids, exactly as bilm-tf / AllenNLP encode them."""
import functools
from typing import List, Sequence

import numpy

MAX_CHARS = 50
BOS_CHAR = 256
EOS_CHAR = 257
BOW_CHAR = 258
EOW_CHAR = 259
PAD_CHAR = 260


def _special(char: int, max_chars: int) -> numpy.ndarray:
    ids = numpy.full(max_chars, PAD_CHAR, dtype=numpy.int64)
    ids[0], ids[1], ids[2] = BOW_CHAR, char, EOW_CHAR
    return ids + 1


def word_to_char_ids(word: str, max_chars: int = MAX_CHARS) -> numpy.ndarray:
    """One word -> (max_chars,) ids. UTF-8 bytes, truncated to max_chars - 2, +1 so 0 means padding."""
    encoded = word.encode("utf-8", "ignore")[: max_chars - 2]
    ids = numpy.full(max_chars, PAD_CHAR, dtype=numpy.int64)
    ids[0] = BOW_CHAR
    ids[1 : len(encoded) + 1] = numpy.frombuffer(encoded, dtype=numpy.uint8)
    ids[len(encoded) + 1] = EOW_CHAR
    return ids + 1


def bos_char_ids(max_chars: int = MAX_CHARS) -> numpy.ndarray:
    return _special(BOS_CHAR, max_chars)


def eos_char_ids(max_chars: int = MAX_CHARS) -> numpy.ndarray:
    return _special(EOS_CHAR, max_chars)


def batch_to_char_ids(
    sentences: Sequence[Sequence[str]], max_chars: int = MAX_CHARS
) -> numpy.ndarray:
    """Token lists -> (B, T, max_chars) int64, zero-padded, without sentence boundaries."""
    lengths = numpy.fromiter((len(s) for s in sentences), dtype=numpy.int64, count=len(sentences))
    width = int(lengths.max()) if len(sentences) else 0
    out = numpy.zeros((len(sentences), width, max_chars), dtype=numpy.int64)
    if width:
        # One cached row per distinct word and one scatter per batch: word by word this took ~6 us a token,
        # which capped GPU pretraining at a few hundred thousand tokens/s (words repeat constantly in text).
        rows = [_cached_word_ids(word, max_chars) for sentence in sentences for word in sentence]
        out[numpy.arange(width)[None, :] < lengths[:, None]] = numpy.stack(rows)
    return out


@functools.lru_cache(maxsize=200_000)
def _cached_word_ids(word: str, max_chars: int) -> numpy.ndarray:
    ids = word_to_char_ids(word, max_chars)
    ids.flags.writeable = False  # shared between calls: only ever copied into a batch
    return ids


def sentence_lengths(sentences: Sequence[Sequence[str]]) -> List[int]:
    return [len(s) for s in sentences]
