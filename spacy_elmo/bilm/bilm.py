"""The ELMo biLM: character encoder + separate forward and backward stacks of projected LSTMs."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy
import torch
from torch import nn

from .char_cnn import CharCNN, CharCNNCache, TokenEncoder
from .chars import batch_to_char_ids, bos_char_ids, eos_char_ids
from .lstm import PackedBatch, ProjectedLSTM, State
from .module_list import ModuleListOf
from .options import BiLMOptions
from .precision import char_encoder_dtype, resolve_precision


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row of time-major x (T, B, D) within its own length; padding stays in place.
    Applying it twice is the identity, so it also undoes itself."""
    T = x.shape[0]
    steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    index = torch.where(steps < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - steps, steps)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def _check_sentences(sentences: Sequence[Sequence[str]], batch_size: int) -> None:
    """A string is a sequence too: "Hello world" would silently become 11 one-character tokens."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"embed_sentences: batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(sentences, (str, bytes)):
        raise TypeError("embed_sentences takes a list of token lists, e.g. [['Hello', 'world']], not a string; "
                        "split the text into tokens first.")
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, (str, bytes)):
            raise TypeError(f"embed_sentences: sentence {i} is a string ({sentence[:40]!r}), not a list of tokens; "
                            f"pass {sentence[:40]!r}.split() or a tokenizer's output.")
        for token in sentence:
            if not isinstance(token, str):
                raise TypeError(f"embed_sentences: sentence {i} has a token of type {type(token).__name__} ({token!r}); "
                                "tokens must be strings.")


@dataclass(frozen=True)
class BiLMOutput:
    """What BiLM.forward returns: n_layers + 1 activations (L, B, T, 2P) with <S>/</S> stripped and zeros
    beyond each row's tokens; mask (B, T) True at real tokens."""
    activations: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class BoundedOutput:
    """What BiLM.forward_with_boundaries returns: activations (L, B, T + 2, 2P) including <S> at 0 and </S>
    at lengths - 1, zero beyond; lengths (B,) = tokens + 2, in the caller's row order."""
    activations: torch.Tensor
    lengths: torch.Tensor


class BiLM(nn.Module):
    """ELMo's bidirectional language model, bilm-tf compatible.

    forward() takes character ids without sentence boundaries (B, T, max_chars), zero-padded, and returns
    n_layers + 1 activations (B, T, 2 * projection_dim) with <S> and </S> already stripped.
    Stateless by default: every sentence starts from zero state. With stateful=True the final LSTM state of
    batch row i is the initial state of row i in the next call, as in AllenNLP / bilm-tf (reset_states())."""

    bos_ids: torch.Tensor  # buffers, registered in __init__
    eos_ids: torch.Tensor

    def __init__(self, options: BiLMOptions, stateful: bool = False, char_cache_size: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.options = options
        # Dropout on every LSTM layer's input, in training mode only (bilm-tf pretraining uses 0.1).
        self.dropout = dropout
        self.stateful = stateful
        self.char_cnn = CharCNN(options)
        P, C, o = options.projection_dim, options.lstm_dim, options
        self.forward_layers = ModuleListOf(ProjectedLSTM(P, C, P, o.cell_clip, o.proj_clip) for _ in range(o.n_layers))
        self.backward_layers = ModuleListOf(ProjectedLSTM(P, C, P, o.cell_clip, o.proj_clip) for _ in range(o.n_layers))
        self.char_cache: Optional[CharCNNCache] = CharCNNCache(char_cache_size) if char_cache_size > 0 else None
        self._states: Optional[List[State]] = None  # per (direction, layer), rows in caller's order
        max_chars = options.max_characters_per_token
        self.register_buffer("bos_ids", torch.as_tensor(bos_char_ids(max_chars)), persistent=False)
        self.register_buffer("eos_ids", torch.as_tensor(eos_char_ids(max_chars)), persistent=False)
        self.precision = "float32"

    def set_precision(self, precision: str, strict: bool = False) -> str:
        """Inference precision, "float32" (exact) | "bfloat16" | "int8" (see precision.py), checked against the
        device the weights are on now: an unsupported one warns and runs float32, or raises if strict.
        Returns the precision in effect. Call it again after moving the model to another kind of device."""
        device = self.bos_ids.device
        self.precision = resolve_precision(precision, device, strict=strict)
        for layer in [*self.forward_layers, *self.backward_layers]:
            layer.set_precision(self.precision)
        self.__dict__["_low_precision_char_cnn"] = None  # rebuilt on first use, from the current weights
        if self.char_cache is not None:
            self.char_cache.clear()  # its vectors came from the previous precision
        return self.precision

    def _inference_char_cnn(self, device: torch.device) -> TokenEncoder:
        """The char encoder in the inference precision: a copy with weights converted once, kept outside the
        module's parameters (so not saved, not trained). Autocast instead would convert the highway's 16M
        weights on every call: at batch 1 that cost more than the encoder's own arithmetic."""
        dtype = char_encoder_dtype(self.precision, device)
        if dtype is None:
            return self.char_cnn
        cached = self.__dict__.get("_low_precision_char_cnn")
        if cached is None or cached[0] != (device, dtype):
            copy = CharCNN(self.options).to(device=device)
            copy.load_state_dict(self.char_cnn.state_dict())
            cached = self.__dict__["_low_precision_char_cnn"] = ((device, dtype), copy.to(dtype).eval().requires_grad_(False))
        return cached[1]

    @property
    def output_dim(self) -> int:
        return self.options.output_dim

    @property
    def n_outputs(self) -> int:
        return self.options.n_outputs

    def reset_states(self) -> None:
        self._states = None

    def token_ids(self, sentences: Sequence[Sequence[str]]) -> numpy.ndarray:
        """Token lists -> the (B, T, K) int64 rows forward() takes, zero past each sentence's end: UTF-8
        character ids here; a checkpoint format with its own vocabularies overrides this."""
        return batch_to_char_ids(sentences, self.options.max_characters_per_token)

    def add_boundaries(self, char_ids: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        """(B, T, K) -> (B, T + 2, K) with <S> first and </S> after each row's last token; lengths (B,)."""
        B, T, K = char_ids.shape
        n_tokens = (char_ids > 0).any(-1).sum(1)
        out = char_ids.new_zeros(B, T + 2, K)
        out[:, 1 : T + 1] = char_ids
        out[:, 0] = self.bos_ids
        out[torch.arange(B, device=char_ids.device), n_tokens + 1] = self.eos_ids
        return out, n_tokens + 2

    def encode_tokens(self, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, T, P) for the valid positions, zeros elsewhere."""
        B, T, _ = char_ids.shape
        valid = torch.arange(T, device=char_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        ids = char_ids[valid]
        if torch.is_grad_enabled():
            vectors = self.char_cnn(ids)
        else:
            encoder = self._inference_char_cnn(ids.device)
            # The word-vector cache serves inference only: a module in training mode may be between updates.
            cache = None if self.training else self.char_cache
            vectors = cache.encode(encoder, ids) if cache is not None else encoder(ids)
            vectors = vectors.float()
        out = vectors.new_zeros(B, T, vectors.shape[-1])
        out[valid] = vectors
        return out

    def _initial_states(self, order: torch.Tensor, B: int) -> List[Optional[State]]:
        n_stacks = 2 * self.options.n_layers
        if not self.stateful or self._states is None:
            return [None] * n_stacks
        initial: List[Optional[State]] = []
        for h_all, c_all in self._states:
            h = h_all.new_zeros(B, h_all.shape[1])
            c = c_all.new_zeros(B, c_all.shape[1])
            keep = min(B, h_all.shape[0])
            h[:keep], c[:keep] = h_all[:keep], c_all[:keep]
            initial.append((h[order], c[order]))
        return initial

    def _store_states(self, finals: List[State], order: torch.Tensor) -> None:
        new_states = []
        for i, (h, c) in enumerate(finals):
            h, c = h.detach(), c.detach()
            B = h.shape[0]
            if self._states is not None and self._states[i][0].shape[0] > B:
                h_all, c_all = self._states[i][0].clone(), self._states[i][1].clone()
            else:
                h_all, c_all = h.new_zeros(h.shape), c.new_zeros(c.shape)
            h_all[order], c_all[order] = h, c
            new_states.append((h_all, c_all))
        self._states = new_states

    def forward(self, char_ids: torch.Tensor) -> BiLMOutput:
        """char_ids (B, T, K) -> BiLMOutput: activations (L, B, T, 2P) and mask (B, T), boundaries stripped."""
        T = char_ids.shape[1]
        full = self.forward_with_boundaries(char_ids)
        mask = torch.arange(T, device=char_ids.device).unsqueeze(0) < (full.lengths - 2).unsqueeze(1)
        # Drop <S> at 0; </S> sits at n_tokens + 1, beyond each row's mask, and is zeroed below.
        activations = full.activations[:, :, 1 : T + 1] * mask.unsqueeze(0).unsqueeze(-1)
        return BiLMOutput(activations=activations, mask=mask)

    def forward_with_boundaries(self, char_ids: torch.Tensor) -> BoundedOutput:
        """char_ids (B, T, K) without boundaries -> BoundedOutput (activations with <S> and </S>, lengths).
        Language-model training reads the top layer from here: [..., :P] is the forward LM, [..., P:] the
        backward LM."""
        B, T, _ = char_ids.shape
        with_bounds, lengths = self.add_boundaries(char_ids)
        packed = PackedBatch.from_lengths(lengths, T + 2)
        order, lengths_sorted, batch_sizes = packed.order, packed.lengths, packed.batch_sizes
        tokens = self.encode_tokens(with_bounds[order], lengths_sorted).transpose(0, 1)  # (T+2, B, P)
        initial = self._initial_states(order, B)
        outputs: List[torch.Tensor] = [torch.cat([tokens, tokens], dim=-1)]
        finals: List[State] = []
        directions = []
        for d, layers in enumerate((self.forward_layers, self.backward_layers)):
            x = tokens if d == 0 else reverse_padded(tokens, lengths_sorted)
            per_layer = []
            for i, layer in enumerate(layers):
                layer_input = nn.functional.dropout(x, self.dropout, self.training) if self.dropout else x
                out, final = layer(layer_input, batch_sizes, initial[d * len(layers) + i])
                if i > 0 and self.options.use_skip_connections:
                    out = out + x
                finals.append(final)
                per_layer.append(out if d == 0 else reverse_padded(out, lengths_sorted))
                x = out
            directions.append(per_layer)
        for fwd, bwd in zip(*directions):
            outputs.append(torch.cat([fwd, bwd], dim=-1))
        if self.stateful:
            self._store_states(finals, order)
        # (L, T+2, B, 2P) -> (L, B, T+2, 2P) in caller's order
        return BoundedOutput(activations=torch.stack(outputs).transpose(1, 2)[:, packed.unsort()], lengths=lengths)

    @torch.no_grad()
    def embed_sentences(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> List[numpy.ndarray]:
        """Token lists -> float32 arrays (n_layers + 1, n_tokens, 2P), in input order.
        Stateless mode sorts by length for speed; stateful mode keeps the given order (row i carries state)."""
        _check_sentences(sentences, batch_size)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            order = list(range(len(sentences)))
            if not self.stateful:
                order.sort(key=lambda i: -len(sentences[i]))
            results: List[Optional[numpy.ndarray]] = [None] * len(sentences)
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = [sentences[i] for i in rows]
                ids = torch.as_tensor(self.token_ids(batch), device=device)
                acts = self(ids).activations.float().cpu().numpy()
                for j, i in enumerate(rows):
                    results[i] = numpy.ascontiguousarray(acts[:, j, : len(sentences[i])])
            return results  # type: ignore[return-value]
        finally:
            self.train(was_training)
