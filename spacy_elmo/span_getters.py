"""Span getters: which stretches of a Doc the biLM reads as one sequence.

They share spacy-transformers' interface (List[Doc] -> List[List[Span]]) and live in the same
`span_getters` registry, under this package's own names (spacy-elmo.*_spans.v1), registered whether or
not spacy-transformers is installed. spacy-transformers' names are never registered here: where it is
installed (the `transformers` extra), `get_spans` may name `spacy-transformers.strided_spans.v1`,
`.sent_spans.v1` or `.doc_spans.v1` and gets spacy-transformers' own functions. They are registered when
spacy_transformers is imported, and spaCy imports it whenever it is installed: every Language() loads all
`spacy_factories` entry points, its `transformer` factory among them, before any component (so any
`get_spans`) is built. Without spacy-transformers such a name fails as any unknown name does.
"""
from functools import partial
from typing import Callable, Iterable, List, Tuple

import catalogue
from spacy.tokens import Doc, Span
from spacy.util import registry

SpanGetter = Callable[[List[Doc]], List[List[Span]]]

if not hasattr(registry, "span_getters"):
    # Same namespace as spacy-transformers: catalogue stores entries globally per namespace.
    registry.span_getters = catalogue.create("spacy", "span_getters", entry_points=True)  # type: ignore[attr-defined]


def strided_bounds(n: int, window: int, stride: int) -> List[Tuple[int, int]]:
    """(start, end) of the windows spacy-transformers' strided spans cut from n tokens."""
    if window < 1 or stride < 1 or stride > window:
        raise ValueError(f"strided spans need 1 <= stride <= window, got window={window}, stride={stride}")
    bounds: List[Tuple[int, int]] = []
    start = 0
    for _ in range(n // stride):
        bounds.append((start, min(start + window, n)))
        if start + window >= n:
            break
        start += stride
    else:
        if start < n:
            bounds.append((start, n))
    return bounds


def get_strided_spans(docs: Iterable[Doc], window: int, stride: int) -> List[List[Span]]:
    """Windows of `window` tokens every `stride` tokens (stride < window overlaps), as spacy-transformers."""
    return [[doc[s:e] for s, e in strided_bounds(len(doc), window, stride)] for doc in docs]


def get_sent_spans(docs: Iterable[Doc]) -> List[List[Span]]:
    return [list(doc.sents) for doc in docs]


def get_doc_spans(docs: Iterable[Doc]) -> List[List[Span]]:
    return [[doc[:]] for doc in docs]


def get_long_doc_spans(docs: Iterable[Doc], max_length: int, window: int, stride: int) -> List[List[Span]]:
    """The whole doc if it has at most max_length tokens; else its sentences when boundaries are set;
    any remaining stretch longer than max_length is cut into strided windows."""
    out: List[List[Span]] = []
    for doc in docs:
        if len(doc) <= max_length:
            out.append([doc[:]] if len(doc) else [])
            continue
        pieces = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        spans: List[Span] = []
        for piece in pieces:
            if len(piece) <= max_length:
                spans.append(piece)
            else:
                for s, e in strided_bounds(len(piece), window, stride):
                    spans.append(doc[piece.start + s : piece.start + e])
        out.append(spans)
    return out


@registry.span_getters("spacy-elmo.long_doc_spans.v1")  # type: ignore[attr-defined]
def configure_long_doc_spans(max_length: int = 256, window: int = 128, stride: int = 96) -> SpanGetter:
    if window > max_length:
        raise ValueError(f"long_doc_spans: window ({window}) must not exceed max_length ({max_length})")
    strided_bounds(0, window, stride)  # validate window/stride now, not on the first long doc
    return partial(get_long_doc_spans, max_length=max_length, window=window, stride=stride)


@registry.span_getters("spacy-elmo.strided_spans.v1")  # type: ignore[attr-defined]
def configure_strided_spans(window: int, stride: int) -> SpanGetter:
    strided_bounds(0, window, stride)
    return partial(get_strided_spans, window=window, stride=stride)


@registry.span_getters("spacy-elmo.sent_spans.v1")  # type: ignore[attr-defined]
def configure_sent_spans() -> SpanGetter:
    return get_sent_spans


@registry.span_getters("spacy-elmo.doc_spans.v1")  # type: ignore[attr-defined]
def configure_doc_spans() -> SpanGetter:
    return get_doc_spans

