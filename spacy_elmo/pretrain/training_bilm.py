"""A backward-friendly forward for bilm.lstm.ProjectedLSTM, used while pretraining.

ProjectedLSTM.forward indexes one timestep out of the block's input projection with
`projected[t - start, :n]`. In the forward pass that is free, but autograd's backward of each such slice
allocates and zero-fills a gradient the size of the whole block and adds it into the block's gradient:
O(T^2) memory traffic per layer, which dominated training time (fill_/add_ were ~60% of a training step
of the small config). Here the block is unbind()-ed once (one stacked backward) and the gates are
split() (one concatenated backward); the arithmetic is the same op for op, so outputs are identical.

The class is swapped onto the existing layer instances (same parameters, same state_dict keys), so
models trained with it save and load exactly like any BiLM.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..bilm.bilm import BiLM
from ..bilm.lstm import TIME_BLOCK, ProjectedLSTM, State


class TrainingProjectedLSTM(ProjectedLSTM):
    def forward(self, inputs: torch.Tensor, batch_sizes: Sequence[int], initial: Optional[State] = None) -> Tuple[torch.Tensor, State]:
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
            steps = projected.view(stop - start, n_rows, 4 * C).unbind(0)
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
                cand = torch.tanh(cand_part)
                c = torch.addcmul(in_gate * cand, forget_gate, c)
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


def use_training_lstm(bilm: BiLM) -> BiLM:
    for layers in (bilm.forward_layers, bilm.backward_layers):
        for layer in layers:
            if type(layer) is ProjectedLSTM:
                layer.__class__ = TrainingProjectedLSTM
    return bilm





class TrainingBiLM(BiLM):
    """BiLM for pretraining: the char CNN runs once per distinct token of the batch (news text repeats
    "the", ",", "." ... constantly: about 2.5x fewer CNN evaluations on a 3,000-token batch) and the LSTM
    layers use TrainingProjectedLSTM. Same parameters and state_dict as BiLM; outputs identical."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        use_training_lstm(self)

    def encode_tokens(self, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return super().encode_tokens(char_ids, lengths)
        B, T, _ = char_ids.shape
        valid = torch.arange(T, device=char_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        distinct, inverse = torch.unique(char_ids[valid], dim=0, return_inverse=True)
        vectors = self.char_cnn(distinct)[inverse]
        out = vectors.new_zeros(B, T, vectors.shape[-1])
        out[valid] = vectors
        return out
__all__ = ["TrainingProjectedLSTM", "TrainingBiLM", "use_training_lstm"]
