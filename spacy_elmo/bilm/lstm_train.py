"""Training path of ProjectedLSTM: one autograd Function for a whole layer over the sequence.

Autograd over the per-step ops (~10 nodes a step, each with its own allocations and bookkeeping) cost
more than the GEMMs in pretraining. Here the forward is the inference loop's arithmetic (one GEMM for
the input projections of a block of timesteps, in-place gate math, a shrinking prefix of active rows)
writing every intermediate that backward needs into packed buffers (see _Packing); the backward is manual
BPTT, 7 ops a step (+1 with the cell clip, +2 conversions under bf16), with the weight gradients as a few
large GEMMs over all timesteps at the end.

Saved: activated gates [i, f, o, g], cell states (c0 first), where the cell clip cut (one compare a
step), tanh(c), the hidden before the projection, the states (h0 first) and the pre-clip projections (their
mask is made in bulk in backward). Backward precomputes in bulk the local derivatives that do not depend
on the incoming gradient (K: the sigmoid/tanh derivatives times the other factor of each gate's product),
so a step is:

    dHp = go * mask_h + dh * mask_h         dh: the next step's grad of h (or the final h's grad)
    dhid = dHp @ proj_weight^T
    dc += dhid * o (1 - tanh^2 c);  dc[clipped] = 0    dc: grad of c, then of the pre-clip c
    dG = K * dc  (all four blocks);  dG[o] = K[o] * dhid
    dc *= f                                  -> the previous step's grad of c
    dh = dG @ state_weight^T

Rows that end at step t keep the final state's gradient in dh / dc until their last step reads it, for
the same reason the forward needs no masking: rows are sorted longest first.

Precision: the GEMMs run in `gemm_dtype` (bfloat16 under CPU autocast; the weights and the layer input
are cast once per call), the gate math and the cell state in float32 (float64 when the layer is float64,
for gradcheck). A gate's pre-activation (input projection + recurrent GEMM, accumulated in float32 inside
the GEMM) is rounded to bf16 once before the float32 sigmoid/tanh, as autocast's addmm rounds it. Under autocast the outputs are bfloat16 as autocast's mm would make them, the final c
float32. Weight gradients are returned float32, from bf16 GEMMs that accumulate in float32.
"""
from typing import Sequence, Tuple

import torch

from .batch_layout import TIME_BLOCK, PackedBatch  # the input projections of TIME_BLOCK steps in one GEMM, as inference


class _Packing:
    """Where each (step t, row r) of the sorted batch lives. Buffers are packed: step t's active rows are
    the contiguous rows off[t] .. off[t] + n_t (no padding, so no zero fills and no wasted GEMM rows);
    state buffers put the initial state in their first B rows and step t's rows at B + off[t].
    pad: packed row -> t * B + r (the caller's (T, B, ...) layout); prev: packed row -> its previous state
    in a state buffer; last: batch row -> its final state in a state buffer (r itself if it has no steps)."""

    def __init__(self, batch_sizes: Tuple[int, ...], B: int, device: torch.device) -> None:
        sizes = [n for n in batch_sizes if n > 0]
        self.sizes = sizes
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.N = N = self.offsets[-1]
        self.dense = N == len(batch_sizes) * B  # no padding: pad is the identity
        n_t = torch.as_tensor(sizes, dtype=torch.long)
        off = torch.as_tensor(self.offsets[:-1], dtype=torch.long)
        step = torch.repeat_interleave(torch.arange(len(sizes)), n_t)
        row = torch.arange(N) - off[step] if N else torch.zeros(0, dtype=torch.long)
        self.pad = (step * B + row).to(device)
        prev_off = torch.cat([torch.zeros(1, dtype=torch.long), off[:-1] + B]) if sizes else off
        self.prev = (prev_off[step] + row).to(device) if N else torch.zeros(0, dtype=torch.long, device=device)
        lengths = PackedBatch.lengths_from_batch_sizes(batch_sizes, B)
        last = torch.arange(B)
        has = lengths > 0
        if N:
            last[has] = B + off[lengths[has] - 1] + last[has]
        self.last = last.to(device)


_packing_cache: "dict" = {}


def _packing(batch_sizes: Tuple[int, ...], B: int, device: torch.device) -> _Packing:
    """The layers of a biLM share their batch_sizes: the index tensors are built once per batch."""
    key = (batch_sizes, B, str(device))
    packing = _packing_cache.get(key)
    if packing is None:
        if len(_packing_cache) >= 8:
            _packing_cache.clear()
        packing = _packing_cache[key] = _Packing(batch_sizes, B, device)
    return packing


def _clip_mask(pre_clip: torch.Tensor, clip: float, dtype: torch.dtype) -> torch.Tensor:
    """1 where clamp(-clip, clip) passes the gradient (inclusive bounds, as clamp's backward), else 0."""
    return (pre_clip.abs() <= clip).to(dtype)


class ProjectedLSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, input_weight: torch.Tensor,
                state_weight: torch.Tensor, proj_weight: torch.Tensor, bias: torch.Tensor,
                forget_offset: torch.Tensor, batch_sizes: Tuple[int, ...], cell_clip: float, proj_clip: float,
                gemm_dtype: torch.dtype):
        with torch.autocast(inputs.device.type, enabled=False):
            return _forward(ctx, inputs, h0, c0, input_weight, state_weight, proj_weight, bias, forget_offset,
                            batch_sizes, cell_clip, proj_clip, gemm_dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor, grad_h: torch.Tensor, grad_c: torch.Tensor):
        with torch.autocast(grad_out.device.type, enabled=False):
            return _backward(ctx, grad_out, grad_h, grad_c)


def _forward(ctx, inputs, h0, c0, input_weight, state_weight, proj_weight, bias, forget_offset, batch_sizes,
             cell_clip, proj_clip, gd):
    T, B, D = inputs.shape
    C, P = proj_weight.shape
    sd = torch.float32 if gd in (torch.bfloat16, torch.float16) else gd  # gate math and cell state
    low = gd != sd
    device = inputs.device
    pk = _packing(batch_sizes, B, device)
    N, off = pk.N, pk.offsets
    flat = inputs.reshape(T * B, D)
    x = (flat if pk.dense else flat.index_select(0, pk.pad)).to(gd).contiguous()  # (N, D)
    w_in, w_state, w_proj = input_weight.to(gd), state_weight.to(gd), proj_weight.to(gd)
    b = (bias + forget_offset).to(gd)

    pre = torch.empty(N, 4 * C, dtype=gd, device=device)  # gate pre-activations
    for start in range(0, len(pk.sizes), TIME_BLOCK):
        rows = slice(off[start], off[min(len(pk.sizes), start + TIME_BLOCK)])
        torch.addmm(b, x[rows], w_in, out=pre[rows])
    act = torch.empty(N, 4 * C, dtype=sd, device=device) if low else pre  # activated gates [i, f, o, g]
    cells = torch.empty(B + N, C, dtype=sd, device=device)  # c0, then each step's clipped c
    cells[:B] = c0
    # where the cell clip cut (clamp's gradient is 0 there): pre-clip != clipped, one compare a step
    cell_clipped = torch.empty(N, C, dtype=torch.bool, device=device) if cell_clip else None
    pre_clip_cell = torch.empty(B, C, dtype=sd, device=device) if cell_clip else None
    tanh_cells = torch.empty(N, C, dtype=sd, device=device)
    hidden = torch.empty(N, C, dtype=gd, device=device)  # o * tanh(c), before the projection
    states = torch.empty(B + N, P, dtype=gd, device=device)  # h0, then each step's output
    states[:B] = h0
    pre_clip_out = torch.empty(N, P, dtype=gd, device=device) if proj_clip else None
    for t, n in enumerate(pk.sizes):
        o = off[t]
        here = slice(o, o + n)
        prev = slice(0, n) if t == 0 else slice(B + off[t - 1], B + off[t - 1] + n)
        gates = pre[here]
        gates.addmm_(states[prev], w_state)
        a = act[here]
        if low:  # one conversion, then the gate math in float32 (out= a float32 tensor would convert twice)
            a.copy_(gates)
        torch.sigmoid_(a[:, : 3 * C])
        torch.tanh_(a[:, 3 * C :])
        c = pre_clip_cell[:n] if cell_clip else cells[B + o : B + o + n]
        torch.mul(a[:, C : 2 * C], cells[prev], out=c)
        c.addcmul_(a[:, :C], a[:, 3 * C :])
        if cell_clip:
            clipped = torch.clamp(c, -cell_clip, cell_clip, out=cells[B + o : B + o + n])
            torch.ne(c, clipped, out=cell_clipped[here])
            c = clipped
        tc = torch.tanh(c, out=tanh_cells[here])
        torch.mul(a[:, 2 * C : 3 * C], tc, out=hidden[here])
        if proj_clip:
            torch.mm(hidden[here], w_proj, out=pre_clip_out[here])
            torch.clamp(pre_clip_out[here], -proj_clip, proj_clip, out=states[B + o : B + o + n])
        else:
            torch.mm(hidden[here], w_proj, out=states[B + o : B + o + n])

    if pk.dense:
        out = states[B:].view(T, B, P).clone()
    else:
        out = torch.zeros(T * B, P, dtype=gd, device=device).index_copy_(0, pk.pad, states[B:]).view(T, B, P)
    h_final = states[pk.last]
    c_final = cells[pk.last]

    ctx.save_for_backward(x, w_in, w_state, w_proj, act, cells, cell_clipped, tanh_cells, hidden, states,
                          pre_clip_out)
    ctx.packing, ctx.shape = pk, (T, B, D)
    ctx.cell_clip, ctx.proj_clip, ctx.gd, ctx.sd = cell_clip, proj_clip, gd, sd
    ctx.dtypes = (inputs.dtype, h0.dtype, c0.dtype, input_weight.dtype, state_weight.dtype, proj_weight.dtype,
                  bias.dtype)
    return out, h_final, c_final


def _backward(ctx, grad_out, grad_h, grad_c):
    x, w_in, w_state, w_proj, act, cells, cell_clipped, tanh_cells, hidden, states, pre_clip_out = ctx.saved_tensors
    pk, gd, sd = ctx.packing, ctx.gd, ctx.sd
    cell_clip, proj_clip = ctx.cell_clip, ctx.proj_clip
    T, B, D = ctx.shape
    C, P = w_proj.shape
    N, off = pk.N, pk.offsets
    device = x.device
    in_gate, forget_gate, out_gate, cand = act.split(C, dim=1)

    # Local derivatives, in bulk: dG = K * dc for i, f, g; K[o] * dhid for o.
    K = torch.empty_like(act)
    sig = act[:, : 3 * C]
    torch.addcmul(sig, sig, sig, value=-1, out=K[:, : 3 * C])  # s (1 - s)
    K[:, :C].mul_(cand)
    K[:, C : 2 * C].mul_(cells.index_select(0, pk.prev))  # c_{t-1}
    K[:, 2 * C : 3 * C].mul_(tanh_cells)
    torch.addcmul(in_gate, in_gate, cand * cand, value=-1, out=K[:, 3 * C :])  # i (1 - g^2)
    dc_from_hidden = torch.addcmul(out_gate, out_gate, tanh_cells * tanh_cells, value=-1)  # o (1 - tanh^2 c)
    dc = grad_c.to(sd).clone()
    grad_out = grad_out.reshape(T * B, P)
    if not pk.dense:
        grad_out = grad_out.index_select(0, pk.pad)
    if proj_clip:  # in the GEMM dtype (grad_out is in it already): the step's addcmul then mixes no dtypes
        mask_h = _clip_mask(pre_clip_out, proj_clip, gd)
        grad_out_masked = grad_out.to(gd) * mask_h

    d_gates = torch.empty(N, 4 * C, dtype=gd, device=device)
    d_proj = torch.empty(N, P, dtype=gd, device=device)  # grad of the pre-clip projection
    dh = grad_h.to(gd).clone()
    d_hidden_buffer = torch.empty(B, C, dtype=gd, device=device)
    low = gd != sd  # gate grads computed in float32, converted once a step into the GEMM dtype
    d_gates_buffer = torch.empty(B, 4 * C, dtype=sd, device=device) if low else None
    d_hidden_float = torch.empty(B, C, dtype=sd, device=device) if low else None
    # Contiguous transposes: mm with a transposed view of a (P, 4C) weight ran at half speed here.
    proj_t, state_t = w_proj.t().contiguous(), w_state.t().contiguous()
    for t in range(len(pk.sizes) - 1, -1, -1):
        n, o = pk.sizes[t], off[t]
        here = slice(o, o + n)
        dp = d_proj[here]
        if proj_clip:
            torch.addcmul(grad_out_masked[here], dh[:n], mask_h[here], out=dp)
        else:
            torch.add(grad_out[here], dh[:n], out=dp)
        d_hidden = torch.mm(dp, proj_t, out=d_hidden_buffer[:n])
        if low:
            d_hidden = d_hidden_float[:n].copy_(d_hidden)
        # dc: grad of this step's c (from the next step, or the final c's) + through the hidden; then of the
        # pre-clip c (zero where the clip cut: a row's final c is its clipped c too)
        dct = dc[:n].addcmul_(d_hidden, dc_from_hidden[here])
        if cell_clip:
            dct.masked_fill_(cell_clipped[here], 0)
        dg = d_gates_buffer[:n] if low else d_gates[here]
        torch.mul(K[here].view(n, 4, C), dct.unsqueeze(1), out=dg.view(n, 4, C))
        torch.mul(K[here, 2 * C : 3 * C], d_hidden, out=dg[:, 2 * C : 3 * C])
        dct.mul_(forget_gate[here])
        if low:
            dg = d_gates[here].copy_(dg)
        torch.mm(dg, state_t, out=dh[:n])

    needs = ctx.needs_input_grad
    dt = ctx.dtypes
    d_inputs = None
    if needs[0]:
        d_x = torch.mm(d_gates, w_in.t().contiguous())
        if pk.dense:
            d_inputs = d_x.view(T, B, D).to(dt[0])
        else:
            d_inputs = torch.zeros(T * B, D, dtype=dt[0], device=device).index_copy_(0, pk.pad, d_x.to(dt[0])).view(T, B, D)
    d_h0 = dh.to(dt[1]) if needs[1] else None
    d_c0 = dc.to(dt[2]) if needs[2] else None
    d_input_weight = torch.mm(x.t(), d_gates).to(dt[3]) if needs[3] else None
    d_state_weight = torch.mm(states.index_select(0, pk.prev).t(), d_gates).to(dt[4]) if needs[4] else None
    d_proj_weight = torch.mm(hidden.t(), d_proj).to(dt[5]) if needs[5] else None
    d_bias = d_gates.sum(0).to(dt[6]) if needs[6] else None  # (bf16 sums accumulate in float32)
    return (d_inputs, d_h0, d_c0, d_input_weight, d_state_weight, d_proj_weight, d_bias, None, None, None, None,
            None)


def gemm_dtype(inputs: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The autocast dtype when autocast is on for the inputs' device and the weights are float32; else
    the weights' dtype."""
    device_type = inputs.device.type
    if weight.dtype == torch.float32 and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight.dtype


def projected_lstm_train(layer, inputs: torch.Tensor, batch_sizes: Sequence[int], h: torch.Tensor,
                         c: torch.Tensor) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """ProjectedLSTM's training forward (same contract as ProjectedLSTM._forward_autograd_reference)."""
    out, h_final, c_final = ProjectedLSTMFunction.apply(
        inputs, h, c, layer.input_weight, layer.state_weight, layer.proj_weight, layer.bias, layer.forget_offset,
        tuple(int(n) for n in batch_sizes), layer.cell_clip, layer.proj_clip, gemm_dtype(inputs, layer.input_weight))
    return out, (h_final, c_final)


__all__ = ["ProjectedLSTMFunction", "projected_lstm_train", "gemm_dtype"]
