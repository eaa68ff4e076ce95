"""The Doc/Token/Span extensions the `elmo` pipe writes and reads, and the opt-in vector hooks.

doc._.elmo_layers holds (n_layers + 1, len(doc), 2P) in the pipe's storage dtype; doc._.elmo_mix the pipe's
fixed mix; doc._.elmo_offsets the tokens they were computed for; doc._.elmo / token._.elmo / span._.elmo are
computed from them on access (float32), each read checked against the doc's current tokens.
"""
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.language import Language
from spacy.tokens import Doc, Span, Token


def mix_layers(layers: numpy.ndarray, weights: Optional[Sequence[float]] = None, gamma: float = 1.0) -> numpy.ndarray:
    """(L, ..., D) layers -> (..., D) float32: gamma * sum_l weights[l] * layers[l]; weights None is the
    uniform mix (the `elmo` pipe's default when its mix_weights is null)."""
    n_layers = layers.shape[0]
    w = numpy.full(n_layers, 1.0 / n_layers, dtype="float32") if weights is None else numpy.asarray(weights, dtype="float32")
    return (float(gamma) * numpy.tensordot(w, layers.astype("float32"), axes=1)).astype("float32")


def _mixed(doc: Doc, layers: numpy.ndarray) -> numpy.ndarray:
    """(L, ..., D) slice of the doc's layers -> (..., D) float32 with the doc's fixed mix."""
    mix = doc._.elmo_mix
    if not mix:
        return mix_layers(layers)
    return mix_layers(layers, mix["weights"], mix["gamma"])


RETOKENIZED = (
    "the doc was retokenized (tokens merged or split) after the 'elmo' pipe ran, so row i of doc._.elmo_layers "
    "is no longer token i. Put the 'elmo' pipe after any component that merges or splits tokens, or run it "
    "again on the changed doc."
)


def token_offsets(doc: Doc) -> numpy.ndarray:
    """(len(doc), 2) int64: each token's (start character, length). Stored with the activations as their
    fingerprint: the text cannot change, so equal offsets mean the same tokens; kept per token (not as one
    digest) so that reading one token or span checks only its own rows."""
    return doc.to_array([IDX, LENGTH]).astype("int64").reshape(len(doc), 2)


def _mismatch(doc: Doc, i: int, stored: numpy.ndarray) -> ValueError:
    start, length = (int(v) for v in stored[i])
    token = doc[i]
    return ValueError(
        f"doc._.elmo_layers row {i} was computed for {doc.text[start:start + length]!r} (characters "
        f"{start}-{start + length}) but token {i} is now {token.text!r} (characters {token.idx}-{token.idx + len(token)}): "
        + RETOKENIZED
    )


def check_alignment(doc: Doc, layers: numpy.ndarray, start: int = 0, end: Optional[int] = None) -> None:
    """Rows start:end of `layers` belong to tokens start:end of `doc` (all rows by default). spaCy cannot
    tell the pipe that a doc was retokenized after it ran; equal token counts are not enough (a merge and
    a split elsewhere keep the count), so each row's token offsets are compared with those stored."""
    if layers.shape[1] != len(doc):
        raise ValueError(f"doc._.elmo_layers has {layers.shape[1]} token rows but the doc has {len(doc)} tokens: " + RETOKENIZED)
    stored = doc._.elmo_offsets
    if stored is None:  # annotated by an older version: the count is all there is to check
        return
    stored = numpy.asarray(stored)
    if stored.shape != (len(doc), 2):
        raise ValueError(f"doc._.elmo_offsets has shape {stored.shape}, not ({len(doc)}, 2): " + RETOKENIZED)
    end = len(doc) if end is None else end
    if start == 0 and end == len(doc):
        current = token_offsets(doc)
    else:
        current = numpy.asarray([(t.idx, len(t)) for t in doc[start:end]], dtype="int64").reshape(end - start, 2)
    differ = numpy.flatnonzero((stored[start:end] != current).any(1))
    if len(differ):
        raise _mismatch(doc, start + int(differ[0]), stored)


def doc_layers(doc: Doc) -> Optional[numpy.ndarray]:
    """doc._.elmo_layers, checked against the doc's tokens (check_alignment)."""
    layers = doc._.elmo_layers
    if layers is not None:
        check_alignment(doc, layers)
    return layers


def get_doc_elmo(doc: Doc) -> Optional[numpy.ndarray]:
    layers = doc_layers(doc)
    return None if layers is None else _mixed(doc, layers)


def get_token_elmo(token: Token) -> Optional[numpy.ndarray]:
    layers = token.doc._.elmo_layers
    if layers is None:
        return None
    check_alignment(token.doc, layers, token.i, token.i + 1)  # this token's row only: O(1), not O(len(doc))
    return _mixed(token.doc, layers[:, token.i])


def get_span_elmo(span: Span) -> Optional[numpy.ndarray]:
    layers = span.doc._.elmo_layers
    if layers is None:
        return None
    check_alignment(span.doc, layers, span.start, span.end)
    if len(span) == 0:
        return numpy.zeros(layers.shape[-1], dtype="float32")
    # The mix is linear, so the mean of mixed vectors is the mix of the mean.
    return _mixed(span.doc, layers[:, span.start : span.end].astype("float32").mean(1))


def register_extensions() -> None:
    for cls, name, kwargs in (
        (Doc, "elmo_layers", {"default": None}),
        (Doc, "elmo_mix", {"default": None}),
        (Doc, "elmo_offsets", {"default": None}),
        (Doc, "elmo", {"getter": get_doc_elmo}),
        (Token, "elmo", {"getter": get_token_elmo}),
        (Span, "elmo", {"getter": get_span_elmo}),
    ):
        if not cls.has_extension(name):
            cls.set_extension(name, **kwargs)


register_extensions()


# Opt-in hooks so .vector / .similarity use ELMo. Module-level functions so docs stay picklable.
def _cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    norm = float(numpy.linalg.norm(a) * numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / norm) if norm else 0.0


def _doc_vector(doc: Doc) -> Optional[numpy.ndarray]:
    return get_span_elmo(doc[:])


def _has_vector(obj) -> bool:
    return obj.doc._.elmo_layers is not None if not isinstance(obj, Doc) else obj._.elmo_layers is not None


def _similarity(obj, other) -> float:
    return _cosine(obj.vector, other.vector)


def set_vector_hooks(doc: Doc) -> None:
    doc.user_hooks.update({"vector": _doc_vector, "has_vector": _has_vector, "similarity": _similarity})
    doc.user_span_hooks.update({"vector": get_span_elmo, "has_vector": _has_vector, "similarity": _similarity})
    doc.user_token_hooks.update({"vector": get_token_elmo, "has_vector": _has_vector, "similarity": _similarity})


class PipeRestoringVectorHooks:
    """nlp.pipe of a pipeline whose 'elmo' pipe sets vector hooks. With n_process > 1 spaCy sends each doc
    back from its worker as bytes, and user hooks (functions) are not part of them: the docs would arrive
    with an empty .vector. spaCy's advice is to set the hooks again after nlp.pipe; this does that, for the
    docs the pipe annotated, so n_process = N gives what n_process = 1 gives. An object, not a closure, so
    that the pipeline still pickles and deep-copies."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp

    def __call__(self, texts: Iterable, *, as_tuples: bool = False, n_process: int = 1,
                 disable: Iterable[str] = (), **kwargs: Any) -> Iterator:
        disabled = set(disable)
        pipe: Callable[..., Iterator] = type(self.nlp).pipe  # the class's own method: this object replaces it
        results = pipe(self.nlp, texts, as_tuples=as_tuples, n_process=n_process, disable=list(disabled), **kwargs)
        hooks = n_process != 1 and any(getattr(proc, "sets_vector_hooks", False) for name, proc in self.nlp.pipeline if name not in disabled)
        for item in results:
            doc = item[0] if as_tuples else item
            if hooks and doc._.elmo_layers is not None:
                set_vector_hooks(doc)
            yield item


def restore_vector_hooks_after_pipe(nlp: Language) -> None:
    """Make nlp.pipe(n_process=N) return docs with the vector hooks (see PipeRestoringVectorHooks)."""
    if not isinstance(nlp.__dict__.get("pipe"), PipeRestoringVectorHooks):
        nlp.pipe = PipeRestoringVectorHooks(nlp)  # type: ignore[method-assign]
