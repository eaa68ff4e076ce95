"""Character encoder: char embeddings -> convolutions -> max over positions -> highway -> projection."""
from collections import OrderedDict
from typing import List, Optional, Protocol, Tuple

import numpy
import torch
from torch import nn

from .highway import Highway
from .module_list import ModuleListOf
from .options import BiLMOptions
from .scratch import scratch

# Tokens per convolution GEMM: keeps the (tokens, positions, filters) intermediate in cache-sized pieces.
CONV_CHUNK = 128
# A GPU has no such cache to fit, and every chunk costs several kernel launches: there, chunks only bound
# memory (2048 tokens x 50 positions x 1024 filters x 4 bytes = 400 MB at the widest filter).
DEVICE_CONV_CHUNK = 2048


def conv_max(chars: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """max over positions of conv(chars) for chars (N, max_chars, char_dim): the same numbers as
    conv(chars.transpose(1, 2)).amax(-1), computed as one GEMM over unfolded windows. With only 16 input
    channels, oneDNN's convolution reaches about a quarter of the GEMM rate; this reaches half or more."""
    n_filters, char_dim, width = conv.weight.shape
    # (n_filters, char_dim, width) -> (width * char_dim, n_filters), tap-major to match the windows below.
    weight = conv.weight.permute(2, 1, 0).reshape(width * char_dim, n_filters)
    needs_grad = torch.is_grad_enabled() and (conv.weight.requires_grad or chars.requires_grad)
    # Autograd keeps every chunk's output, and autocast returns half precision: neither can share a buffer.
    reuse_memory = not needs_grad and not torch.is_autocast_enabled(chars.device.type)
    bias = conv.bias
    assert bias is not None  # the convolutions are built with a bias, as bilm-tf's
    pooled = []
    chunk = CONV_CHUNK if chars.device.type == "cpu" else DEVICE_CONV_CHUNK
    for start in range(0, chars.shape[0], chunk):
        part = chars[start : start + chunk]
        windows = part.unfold(1, width, 1).transpose(2, 3)  # (n, positions, width, char_dim)
        n, positions = windows.shape[:2]
        rows = windows.reshape(n * positions, width * char_dim)
        if reuse_memory:  # a fresh 20 MB output per chunk page-faults
            out = scratch("char_conv", n * positions * n_filters, chars).view(n * positions, n_filters)
            torch.addmm(bias, rows, weight, out=out)
        else:
            out = torch.addmm(bias, rows, weight)
        pooled.append(out.view(n, positions, n_filters).amax(dim=1))
    return torch.cat(pooled) if pooled else chars.new_zeros(0, n_filters)


class TokenEncoder(Protocol):
    """Character ids -> token vectors: the bilm-tf CharCNN, or ELMoForManyLangs' token embedder."""

    options: BiLMOptions

    def __call__(self, ids: torch.Tensor) -> torch.Tensor: ...


class CharCNN(nn.Module):
    def __init__(self, options: BiLMOptions) -> None:
        super().__init__()
        self.options = options
        # Row 0 is the padding id ("no character"); bilm-tf's file has 261 rows, we hold 262.
        self.char_embed = nn.Embedding(262, options.char_dim, padding_idx=0)
        self.convs = ModuleListOf(
            nn.Conv1d(options.char_dim, n, kernel_size=width) for width, n in options.filters
        )
        self.activation = torch.tanh if options.activation == "tanh" else torch.relu
        self.highway = Highway(options.n_filters, options.n_highway)
        self.projection = nn.Linear(options.n_filters, options.projection_dim)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(..., max_chars) int64 -> (..., projection_dim)."""
        lead = char_ids.shape[:-1]
        flat = char_ids.reshape(-1, char_ids.shape[-1])
        chars = self.char_embed(flat)  # (N, max_chars, char_dim)
        # max then activation == activation then max for monotonic activations, and is cheaper.
        pooled = [self.activation(conv_max(chars, conv)) for conv in self.convs]
        x = self.highway(torch.cat(pooled, dim=-1))
        return self.projection(x).reshape(*lead, -1)


class CharCNNCache:
    """Bounded LRU of token vectors keyed by the word's character ids, for inference only.

    A token vector depends only on the word, so serving can compute each word type once. The vectors live
    in one tensor of at most max_size rows (max_size x projection_dim x 4 bytes, plus ~250 bytes a word for
    its key and slot): a tensor per word would cost several times the vector itself. A different encoder,
    or one whose weights changed in place since the vectors were stored, empties the cache first."""

    def __init__(self, max_size: int = 100_000) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"CharCNNCache: max_size must be a positive integer, got {max_size!r}")
        self.max_size = max_size
        self._slots: "OrderedDict[bytes, int]" = OrderedDict()  # key -> row of _table, least recent first
        self._table: Optional[torch.Tensor] = None
        self._weights: Tuple[Tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        self._slots.clear()
        self._table = None

    def _check_weights(self, encoder: TokenEncoder) -> None:
        # Every in-place change of a parameter (an optimizer step, load_state_dict) bumps its version.
        params = encoder.parameters() if isinstance(encoder, nn.Module) else ()
        weights = tuple((id(p), p._version) for p in params)
        if weights != self._weights:
            self.clear()
            self._weights = weights

    @staticmethod
    def _keys(char_ids: torch.Tensor) -> List[bytes]:
        rows = char_ids.cpu().numpy()
        if rows.size and 0 <= rows.min() and rows.max() < 2**16:
            rows = rows.astype(numpy.uint16)  # character ids fit: a quarter of the key's memory
        return [row.tobytes() for row in rows]

    def _table_for(self, vectors: torch.Tensor, rows: int) -> torch.Tensor:
        """The table, grown (doubling, up to max_size) to hold `rows` rows like `vectors`."""
        table = self._table
        if table is not None and (table.dtype != vectors.dtype or table.device != vectors.device):
            self.clear()
            table = None
        if table is None or table.shape[0] < rows:
            capacity = min(self.max_size, max(rows, 1024, 0 if table is None else 2 * table.shape[0]))
            grown = vectors.new_empty(capacity, vectors.shape[-1])
            if table is not None:
                grown[: table.shape[0]] = table
            table = self._table = grown
        return table

    def encode(self, encoder: TokenEncoder, char_ids: torch.Tensor) -> torch.Tensor:
        """Same as encoder(char_ids) for (N, max_chars) ids, computing only unseen words."""
        self._check_weights(encoder)
        if self._table is not None and self._table.device != char_ids.device:
            self.clear()  # the module moved (BiLM.to): its vectors belong to the old device
        keys = self._keys(char_ids)
        if not keys:
            return char_ids.new_zeros((0, encoder.options.projection_dim), dtype=torch.float32)
        new: "OrderedDict[bytes, int]" = OrderedDict()  # unseen key -> its row in this batch's encoder output
        hit_at: List[int] = []
        hit_slots: List[int] = []
        new_at: List[int] = []
        new_rows: List[int] = []
        first: List[int] = []  # where each unseen key first occurs
        for i, key in enumerate(keys):
            slot = self._slots.get(key)
            if slot is not None:
                hit_at.append(i)
                hit_slots.append(slot)
                self._slots.move_to_end(key)
            else:
                row = new.get(key)
                if row is None:
                    row = new[key] = len(first)
                    first.append(i)
                new_at.append(i)
                new_rows.append(row)
        device = char_ids.device
        if new:
            vectors = encoder(char_ids[torch.as_tensor(first, device=device)])
        else:
            assert self._table is not None
            vectors = self._table[:0]
        out = vectors.new_empty(len(keys), vectors.shape[-1])
        if hit_at:
            assert self._table is not None
            out[torch.as_tensor(hit_at, device=device)] = self._table[torch.as_tensor(hit_slots, device=device)]
        if new:
            out[torch.as_tensor(new_at, device=device)] = vectors[torch.as_tensor(new_rows, device=device)]
            self._store(list(new)[-self.max_size :], vectors[len(new) - min(len(new), self.max_size) :])
        return out

    def _store(self, keys: List[bytes], vectors: torch.Tensor) -> None:
        """Insert at most max_size new keys: the least recent entries give up their rows, never one of these."""
        table = self._table_for(vectors, min(self.max_size, len(self._slots) + len(keys)))
        slots = []
        for key in keys:
            if len(self._slots) < self.max_size:
                slot = len(self._slots)  # rows are handed out in order until the table is full
            else:
                _, slot = self._slots.popitem(last=False)
            self._slots[key] = slot
            slots.append(slot)
        table[torch.as_tensor(slots, device=table.device)] = vectors
