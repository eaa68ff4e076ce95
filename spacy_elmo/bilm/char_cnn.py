"""Character encoder: char embeddings -> convolutions -> max over positions -> highway -> projection."""
from collections import OrderedDict
from typing import Protocol, Tuple

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

    A token vector depends only on the word, so serving can compute each word type once. At most max_size
    vectors are kept (about max_size x (projection_dim x 4 + 400) bytes with the keys). A different encoder,
    or one whose weights changed in place since the vectors were stored, empties the cache first."""

    def __init__(self, max_size: int = 100_000) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"CharCNNCache: max_size must be a positive integer, got {max_size!r}")
        self.max_size = max_size
        self._store: "OrderedDict[bytes, torch.Tensor]" = OrderedDict()
        self._weights: Tuple[Tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def _check_weights(self, encoder: TokenEncoder) -> None:
        # Every in-place change of a parameter (an optimizer step, load_state_dict) bumps its version.
        params = encoder.parameters() if isinstance(encoder, nn.Module) else ()
        weights = tuple((id(p), p._version) for p in params)
        if weights != self._weights:
            self._store.clear()
            self._weights = weights

    def encode(self, encoder: TokenEncoder, char_ids: torch.Tensor) -> torch.Tensor:
        """Same as encoder(char_ids) for (N, max_chars) ids, computing only unseen words."""
        self._check_weights(encoder)
        keys = [row.tobytes() for row in char_ids.cpu().numpy()]
        missing = OrderedDict((k, i) for i, k in enumerate(keys) if k not in self._store)
        if missing:
            rows = torch.as_tensor(list(missing.values()), device=char_ids.device)
            vectors = encoder(char_ids[rows])
            for key, vector in zip(missing, vectors):
                self._store[key] = vector.clone()  # a view would pin the whole batch's storage
        out = torch.stack([self._store[k] for k in keys]) if keys else char_ids.new_zeros((0, encoder.options.projection_dim), dtype=torch.float32)
        for key in keys:
            self._store.move_to_end(key)
        while len(self._store) > self.max_size:
            self._store.popitem(last=False)
        return out
