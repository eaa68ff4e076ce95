"""One direction, one layer of bilm-tf's LSTM: projection, cell clipping and projection clipping.

The hot loop of the biLM. Speed comes from:
- one GEMM for the input projections of a block of timesteps (instead of one per step), into a buffer
  reused across blocks (fresh 10-100 MB tensors page-fault);
- in-place gate arithmetic at inference (one allocation per step instead of ten: that alone was 3.5x);
- batches sorted by length, so the active rows at step t are a prefix that shrinks as sentences end:
  no masking, no per-step copies, finished rows simply drop off;
- gate columns stored as [i, f, o, g] so that one sigmoid call covers three gates;
- `addmm` for the recurrent GEMM with the precomputed input projection as its bias.
torch.nn.LSTM has proj_size but no clipping, so it cannot express this cell.
"""
import os
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .batch_layout import TIME_BLOCK, PackedBatch
from .lstm_train import projected_lstm_train
from .precision import LinearMap, make_map
from .scratch import scratch

State = Tuple[torch.Tensor, torch.Tensor]

# At inference the block also stays under this many elements (32 MB fp32), so the reused buffer is bounded.
INFERENCE_BLOCK_ELEMENTS = 8 * 1024 * 1024
FORGET_BIAS = 1.0


class ProjectedLSTM(nn.Module):
    forget_offset: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, input_dim: int, cell_dim: int, proj_dim: int, cell_clip: float = 0.0, proj_clip: float = 0.0) -> None:
        super().__init__()
        self.input_dim, self.cell_dim, self.proj_dim = input_dim, cell_dim, proj_dim
        self.cell_clip, self.proj_clip = float(cell_clip), float(proj_clip)
        # Gate blocks in [i, f, o, g] order; weights are stored transposed (in, out) for x @ W.
        self.input_weight = nn.Parameter(torch.empty(input_dim, 4 * cell_dim))
        self.state_weight = nn.Parameter(torch.empty(proj_dim, 4 * cell_dim))
        # bias is kept as bilm-tf stores it; TF's LSTMCell adds forget_bias = 1.0 at run time, and so do we,
        # so that load -> save -> load is bit-exact.
        self.bias = nn.Parameter(torch.zeros(4 * cell_dim))
        forget_offset = torch.zeros(4 * cell_dim)
        forget_offset[cell_dim : 2 * cell_dim] = FORGET_BIAS
        self.register_buffer("forget_offset", forget_offset, persistent=False)
        self.proj_weight = nn.Parameter(torch.empty(cell_dim, proj_dim))
        self.reset_parameters()
        # Inference precision of the no-grad path; the low-precision copies of the weights are made lazily
        # (and again after a move to another device or a weight change through set_precision).
        self.precision = "float32"
        self._low_precision_maps: Optional[Tuple[torch.device, Tuple[LinearMap, LinearMap, LinearMap]]] = None

    def set_precision(self, precision: str) -> None:
        """"float32" | "bfloat16" | "int8" for inference (see precision.py); training is always float32."""
        self.precision = precision
        self._low_precision_maps = None

    def _linear_maps(self) -> Tuple[LinearMap, LinearMap, LinearMap]:
        """(input, state, projection) GEMMs in this layer's inference precision."""
        weights = (self.input_weight, self.state_weight, self.proj_weight)
        if self.precision == "float32":
            return LinearMap(weights[0]), LinearMap(weights[1]), LinearMap(weights[2])
        device = self.input_weight.device
        cached = self._low_precision_maps
        if cached is None or cached[0] != device:
            maps = make_map(self.precision, weights[0]), make_map(self.precision, weights[1]), make_map(self.precision, weights[2])
            cached = self._low_precision_maps = (device, maps)
        return cached[1]

    def reset_parameters(self) -> None:
        for weight in (self.input_weight, self.state_weight, self.proj_weight):
            nn.init.xavier_uniform_(weight)
        with torch.no_grad():
            self.bias.zero_()

    def forward(self, inputs: torch.Tensor, batch_sizes: Sequence[int], initial: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        """inputs (T, B, input_dim), time-major, rows sorted by length (longest first);
        batch_sizes[t] = rows still active at step t (non-increasing).
        Returns outputs (T, B, proj_dim), zero past each row's end, and each row's final (h, c)."""
        T, B, _ = inputs.shape
        if initial is None:
            h = inputs.new_zeros(B, self.proj_dim)
            c = inputs.new_zeros(B, self.cell_dim)
        else:
            h, c = initial
        needs_grad = torch.is_grad_enabled() and (self.training or any(p.requires_grad for p in self.parameters()))
        # Under autocast the GEMMs return half precision: the in-place path would mix dtypes in one buffer.
        if needs_grad or torch.is_autocast_enabled(inputs.device.type):
            return self._forward_autograd(inputs, batch_sizes, h, c)
        return self._forward_inplace(inputs, batch_sizes, h, c)

    def _input_projection(self, inputs: torch.Tensor, start: int, stop: int, n_rows: int) -> torch.Tensor:
        """(stop - start, n_rows, 4C): one GEMM for a block of timesteps, with forget bias added."""
        block = inputs[start:stop, :n_rows].reshape(-1, self.input_dim)
        projected = torch.addmm(self.bias + self.forget_offset, block, self.input_weight)
        return projected.view(stop - start, n_rows, 4 * self.cell_dim)

    def _forward_autograd(self, inputs: torch.Tensor, batch_sizes: Sequence[int], h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, State]:
        """Training (and autocast) forward: one autograd Function for the whole layer, with manual BPTT
        (lstm_train.py). SPACY_ELMO_LSTM_TRAIN=reference selects the per-op autograd version below instead
        (for benchmarks and as the tests' reference)."""
        if os.environ.get("SPACY_ELMO_LSTM_TRAIN") == "reference":
            return self._forward_autograd_reference(inputs, batch_sizes, h, c)
        return projected_lstm_train(self, inputs, batch_sizes, h, c)

    def _forward_autograd_reference(self, inputs: torch.Tensor, batch_sizes: Sequence[int], h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, State]:
        """Reference: out-of-place per-step ops recorded by autograd; every intermediate stays available to backward.
        The block is unbind()-ed once and the gates split(): indexing a slice per step instead would make
        autograd zero-fill and add a block-sized gradient at every step (O(T^2) memory traffic)."""
        T, B, _ = inputs.shape
        C = self.cell_dim
        outputs: List[torch.Tensor] = []
        finished_h: List[torch.Tensor] = []
        finished_c: List[torch.Tensor] = []
        for start in range(0, T, TIME_BLOCK):
            stop = min(T, start + TIME_BLOCK)
            steps = self._input_projection(inputs, start, stop, batch_sizes[start]).unbind(0)
            for t in range(start, stop):
                n = batch_sizes[t]
                if n < h.shape[0]:
                    finished_h.append(h[n:])
                    finished_c.append(c[n:])
                    h, c = h[:n], c[:n]
                step_input = steps[t - start]
                if n < step_input.shape[0]:
                    step_input = step_input[:n]
                gates = torch.addmm(step_input, h, self.state_weight)
                sig_part, cand_part = gates.split([3 * C, C], dim=1)
                in_gate, forget_gate, out_gate = torch.sigmoid(sig_part).split(C, dim=1)
                c = torch.addcmul(in_gate * torch.tanh(cand_part), forget_gate, c)
                if self.cell_clip:
                    c = c.clamp(-self.cell_clip, self.cell_clip)
                h = torch.mm(out_gate * torch.tanh(c), self.proj_weight)
                if self.proj_clip:
                    h = h.clamp(-self.proj_clip, self.proj_clip)
                outputs.append(h)
        finished_h.append(h)
        finished_c.append(c)
        final = (torch.cat(finished_h[::-1]), torch.cat(finished_c[::-1]))
        out = nn.utils.rnn.pad_sequence(outputs, batch_first=True) if outputs else inputs.new_zeros(0, B, self.proj_dim)
        if out.shape[1] < B:
            out = nn.functional.pad(out, (0, 0, 0, B - out.shape[1]))
        return out, final

    @torch.no_grad()
    def _forward_inplace(self, inputs: torch.Tensor, batch_sizes: Sequence[int], h: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, State]:
        """Inference: the same arithmetic, in place, so a step allocates one (n, C) buffer instead of ten.
        Rows that finished keep their final state untouched because later steps only write rows [:n]."""
        T, B, _ = inputs.shape
        C = self.cell_dim
        out = inputs.new_zeros(T, B, self.proj_dim)
        h_initial, c_all = h, c.clone()
        # One reused buffer for every block's input projection: fresh 10-100 MB tensors page-fault.
        widest = max(batch_sizes[0] if T else 0, 1)
        time_block = max(1, min(TIME_BLOCK, INFERENCE_BLOCK_ELEMENTS // (widest * 4 * C)))
        buffer = scratch("lstm_input_projection", min(T, time_block) * widest * 4 * C, inputs)
        input_map, state_map, proj_map = self._linear_maps()
        for start in range(0, T, time_block):
            stop = min(T, start + time_block)
            n_rows = batch_sizes[start]
            block = inputs[start:stop, :n_rows].reshape(-1, self.input_dim)
            projected = buffer[: block.shape[0] * 4 * C].view(block.shape[0], 4 * C)
            input_map.write_with_bias(self.bias + self.forget_offset, block, projected)
            projected = projected.view(stop - start, n_rows, 4 * C)
            for t in range(start, stop):
                n = batch_sizes[t]
                gates = projected[t - start, :n]
                state_map.add(h[:n], gates)
                torch.sigmoid_(gates[:, : 3 * C])
                torch.tanh_(gates[:, 3 * C :])
                c = c_all[:n]
                c.mul_(gates[:, C : 2 * C]).addcmul_(gates[:, :C], gates[:, 3 * C :])
                if self.cell_clip:
                    c.clamp_(-self.cell_clip, self.cell_clip)
                hidden = torch.tanh(c).mul_(gates[:, 2 * C : 3 * C])
                h = out[t, :n]
                proj_map.write(hidden, h)
                if self.proj_clip:
                    h.clamp_(-self.proj_clip, self.proj_clip)
        # A row's final h is its output at its last step (or the initial h if it had no steps).
        lengths = PackedBatch.lengths_from_batch_sizes(batch_sizes, B).to(out.device)
        last = out[(lengths - 1).clamp(min=0), torch.arange(B, device=out.device)]
        h_final = torch.where((lengths > 0).unsqueeze(1), last, h_initial)
        return out, (h_final, c_all)
