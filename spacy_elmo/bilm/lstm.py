"""One direction, one layer of bilm-tf's LSTM: projection, cell clipping and projection clipping.

The hot loop of the biLM. Speed comes from:
- one GEMM for the input projections of a block of timesteps (instead of one per step);
- batches sorted by length, so the active rows at step t are a prefix that shrinks as sentences end:
  no masking, no per-step copies, finished rows simply drop off;
- gate columns stored as [i, f, o, g] so that one sigmoid call covers three gates;
- `addmm` for the recurrent GEMM with the precomputed input projection as its bias.
torch.nn.LSTM has proj_size but no clipping, so it cannot express this cell.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

State = Tuple[torch.Tensor, torch.Tensor]

# Timesteps whose input projections are computed in one GEMM; bounds memory on very long inputs.
TIME_BLOCK = 64
FORGET_BIAS = 1.0


class ProjectedLSTM(nn.Module):
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
        C = self.cell_dim
        if initial is None:
            h = inputs.new_zeros(B, self.proj_dim)
            c = inputs.new_zeros(B, C)
        else:
            h, c = initial
        bias = self.bias + self.forget_offset
        outputs: List[torch.Tensor] = []
        finished_h: List[torch.Tensor] = []
        finished_c: List[torch.Tensor] = []
        for start in range(0, T, TIME_BLOCK):
            stop = min(T, start + TIME_BLOCK)
            n_rows = batch_sizes[start]
            block = inputs[start:stop, :n_rows]
            projected = torch.addmm(bias, block.reshape(-1, self.input_dim), self.input_weight)
            projected = projected.view(stop - start, n_rows, 4 * C)
            for t in range(start, stop):
                n = batch_sizes[t]
                if n < h.shape[0]:
                    finished_h.append(h[n:])
                    finished_c.append(c[n:])
                    h, c = h[:n], c[:n]
                gates = torch.addmm(projected[t - start, :n], h, self.state_weight)
                sig = torch.sigmoid(gates[:, : 3 * C])
                cand = torch.tanh(gates[:, 3 * C :])
                c = torch.addcmul(sig[:, :C] * cand, sig[:, C : 2 * C], c)
                if self.cell_clip:
                    c = c.clamp(-self.cell_clip, self.cell_clip)
                h = torch.mm(sig[:, 2 * C :] * torch.tanh(c), self.proj_weight)
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
