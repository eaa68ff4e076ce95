"""Training path of ProjectedLSTM: one autograd Function for a whole layer over the sequence.

Autograd over the per-step ops (~10 nodes a step, each with its own allocations and bookkeeping) cost
more than the GEMMs in pretraining. Here the forward is the inference loop's arithmetic (one GEMM for
the input projections of a block of timesteps, in-place gate math, a shrinking prefix of active rows)
writing every intermediate that backward needs into a (T, B, ...) buffer; the backward is manual BPTT,
7 ops a step, with the weight gradients as a few large GEMMs over all timesteps at the end.

Saved: activated gates [i, f, o, g], cell states (clipped, with c0 at index 0), the pre-clip cell and
projection values (their clip masks are made in bulk in backward), tanh(c), the hidden before the
projection, the outputs. Backward precomputes in bulk the local derivatives that do not depend on the
incoming gradient (sigmoid/tanh derivatives times the other factor, with the cell clip mask folded into
the recurrence factor f_t * mask_{t-1}), so a step is:

    dHp = go_masked + dh * mask_h          dh: recurrent grad of h (or the final h's grad)
    dhid = dHp @ proj_weight^T
    dc += dhid * (o (1 - tanh^2 c) mask_c)  dc: grad of the pre-clip cell state
    dG = K * dc  (all four blocks);  dG[o] = K[o] * dhid
    dc *= f_t mask_{t-1}                    -> grad of the previous pre-clip cell state
    dh = dG @ state_weight^T

Rows that end at step t keep the final state's gradient in dh / dc until their last step reads it, for
the same reason the forward needs no masking: rows are sorted longest first.

Precision: the GEMMs run in `gemm_dtype` (bfloat16 under CPU autocast; the weights and the layer input
are cast once per call), the gate math and the cell state in float32 (float64 when the layer is float64,
for gradcheck). Under autocast the outputs are bfloat16 as autocast's mm would make them, the final c
float32. Weight gradients are returned float32, from bf16 GEMMs that accumulate in float32.
"""
from typing import List, Optional, Sequence, Tuple

import torch

TIME_BLOCK = 64  # the input projections of this many timesteps in one GEMM (as lstm.py)


def _lengths(batch_sizes: Sequence[int], n_rows: int, device: torch.device) -> torch.Tensor:
    sizes = torch.as_tensor(list(batch_sizes), dtype=torch.long)
    if n_rows == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    return (sizes.unsqueeze(0) > torch.arange(n_rows).unsqueeze(1)).sum(1).to(device)


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
    x = inputs.to(gd).contiguous()
    w_in, w_state, w_proj = input_weight.to(gd), state_weight.to(gd), proj_weight.to(gd)
    h_init = h0.to(gd)
    b = (bias + forget_offset).to(gd)

    pre = torch.empty(T, B, 4 * C, dtype=gd, device=device)  # gate pre-activations
    for start in range(0, T, TIME_BLOCK):
        stop = min(T, start + TIME_BLOCK)
        n_rows = batch_sizes[start]
        if n_rows == 0:
            break
        if n_rows == B:
            torch.addmm(b, x[start:stop].view(-1, D), w_in, out=pre[start:stop].view(-1, 4 * C))
        else:
            block = x[start:stop, :n_rows].reshape(-1, D)
            pre[start:stop, :n_rows] = torch.addmm(b, block, w_in).view(stop - start, n_rows, 4 * C)
    act = torch.empty(T, B, 4 * C, dtype=sd, device=device) if low else pre  # activated gates
    cells = torch.empty(T + 1, B, C, dtype=sd, device=device)  # clipped c; cells[0] = c0
    cells[0] = c0
    pre_clip_cells = torch.empty(T, B, C, dtype=sd, device=device) if cell_clip else None
    tanh_cells = torch.empty(T, B, C, dtype=sd, device=device)
    # Zero rows past each step's end: the weight-gradient GEMMs run over every (t, row).
    hidden = torch.zeros(T, B, C, dtype=gd, device=device)
    pre_clip_out = torch.empty(T, B, P, dtype=gd, device=device) if proj_clip else None
    out = torch.zeros(T, B, P, dtype=gd, device=device)
    for t in range(T):
        n = batch_sizes[t]
        if n == 0:
            break
        gates = pre[t, :n]
        gates.addmm_(out[t - 1, :n] if t else h_init[:n], w_state)
        a = act[t, :n]
        if low:
            torch.sigmoid(gates[:, : 3 * C], out=a[:, : 3 * C])
            torch.tanh(gates[:, 3 * C :], out=a[:, 3 * C :])
        else:
            torch.sigmoid_(a[:, : 3 * C])
            torch.tanh_(a[:, 3 * C :])
        c = pre_clip_cells[t, :n] if cell_clip else cells[t + 1, :n]
        torch.mul(a[:, C : 2 * C], cells[t, :n], out=c)
        c.addcmul_(a[:, :C], a[:, 3 * C :])
        if cell_clip:
            c = torch.clamp(c, -cell_clip, cell_clip, out=cells[t + 1, :n])
        tc = torch.tanh(c, out=tanh_cells[t, :n])
        torch.mul(a[:, 2 * C : 3 * C], tc, out=hidden[t, :n])
        if proj_clip:
            torch.mm(hidden[t, :n], w_proj, out=pre_clip_out[t, :n])
            torch.clamp(pre_clip_out[t, :n], -proj_clip, proj_clip, out=out[t, :n])
        else:
            torch.mm(hidden[t, :n], w_proj, out=out[t, :n])

    lengths = _lengths(batch_sizes, B, device)
    rows = torch.arange(B, device=device)
    last = out[(lengths - 1).clamp(min=0), rows] if T else h_init
    h_final = torch.where((lengths > 0).unsqueeze(1), last, h_init)
    c_final = cells[lengths, rows]

    ctx.save_for_backward(x, h_init, w_in, w_state, w_proj, act, cells, pre_clip_cells, tanh_cells, hidden,
                          pre_clip_out, out)
    ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
    ctx.cell_clip, ctx.proj_clip, ctx.gd, ctx.sd = cell_clip, proj_clip, gd, sd
    ctx.dtypes = (inputs.dtype, h0.dtype, c0.dtype, input_weight.dtype, state_weight.dtype, proj_weight.dtype,
                  bias.dtype)
    return out, h_final, c_final


def _backward(ctx, grad_out, grad_h, grad_c):
    x, h_init, w_in, w_state, w_proj, act, cells, pre_clip_cells, tanh_cells, hidden, pre_clip_out, out = ctx.saved_tensors
    batch_sizes, lengths, gd, sd = ctx.batch_sizes, ctx.lengths, ctx.gd, ctx.sd
    cell_clip, proj_clip = ctx.cell_clip, ctx.proj_clip
    T, B, D = x.shape
    C, P = w_proj.shape
    device = x.device
    in_gate, forget_gate, out_gate, cand = act.split(C, dim=2)

    # Local derivatives, in bulk: dG = K * dc for i, f, g; K[o] * dhid for o.
    K = torch.empty_like(act)
    sig = act[..., : 3 * C]
    torch.addcmul(sig, sig, sig, value=-1, out=K[..., : 3 * C])  # s (1 - s)
    K[..., :C].mul_(cand)
    K[..., C : 2 * C].mul_(cells[:T])
    K[..., 2 * C : 3 * C].mul_(tanh_cells)
    torch.addcmul(in_gate, in_gate, cand * cand, value=-1, out=K[..., 3 * C :])  # i (1 - g^2)
    dc_from_hidden = torch.addcmul(out_gate, out_gate, tanh_cells * tanh_cells, value=-1)  # o (1 - tanh^2 c)
    dc = grad_c.to(sd).clone()
    if cell_clip:
        mask_c = _clip_mask(pre_clip_cells, cell_clip, sd)
        dc_from_hidden.mul_(mask_c)
        recurrence = torch.empty_like(mask_c)  # f_t * mask_{t-1}: c0 has no clip
        recurrence[:1] = forget_gate[:1]
        torch.mul(forget_gate[1:], mask_c[:-1], out=recurrence[1:])
        # a row's final c is its clipped c at its last step: that step's mask applies to grad_c
        rows = torch.arange(B, device=device)
        last_mask = mask_c[(lengths - 1).clamp(min=0), rows] if T else torch.ones_like(dc)
        dc.mul_(torch.where((lengths > 0).unsqueeze(1), last_mask, torch.ones_like(dc)))
    else:
        recurrence = forget_gate
    if proj_clip:
        mask_h = _clip_mask(pre_clip_out, proj_clip, sd)
        grad_out_masked = grad_out.to(sd) * mask_h
    else:
        mask_h = grad_out_masked = None

    d_gates = torch.zeros(T, B, 4 * C, dtype=gd, device=device)
    d_proj = torch.zeros(T, B, P, dtype=gd, device=device)  # grad of the pre-clip projection
    dh = grad_h.to(gd).clone()
    d_hidden_buffer = torch.empty(B, C, dtype=gd, device=device)
    proj_t, state_t = w_proj.t(), w_state.t()
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        if n == 0:
            continue
        dp = d_proj[t, :n]
        if proj_clip:
            torch.addcmul(grad_out_masked[t, :n], dh[:n], mask_h[t, :n], out=dp)
        else:
            torch.add(grad_out[t, :n], dh[:n], out=dp)
        d_hidden = torch.mm(dp, proj_t, out=d_hidden_buffer[:n])
        dct = dc[:n].addcmul_(d_hidden, dc_from_hidden[t, :n])
        dg = d_gates[t, :n]
        torch.mul(K[t, :n].view(n, 4, C), dct.unsqueeze(1), out=dg.view(n, 4, C))
        torch.mul(K[t, :n, 2 * C : 3 * C], d_hidden, out=dg[:, 2 * C : 3 * C])
        dct.mul_(recurrence[t, :n])
        torch.mm(dg, state_t, out=dh[:n])

    needs = ctx.needs_input_grad
    dt = ctx.dtypes
    flat_gates = d_gates.view(-1, 4 * C)
    d_inputs = torch.mm(flat_gates, w_in.t()).view(T, B, D).to(dt[0]) if needs[0] else None
    d_h0 = dh.to(dt[1]) if needs[1] else None
    d_c0 = dc.to(dt[2]) if needs[2] else None
    d_input_weight = torch.mm(x.view(-1, D).t(), flat_gates).to(dt[3]) if needs[3] else None
    d_state_weight = None
    if needs[4]:
        d_state_weight = torch.mm(h_init.t(), d_gates[0]) if T else torch.zeros_like(w_state)
        if T > 1:
            d_state_weight.addmm_(out[:-1].reshape(-1, P).t(), d_gates[1:].view(-1, 4 * C))
        d_state_weight = d_state_weight.to(dt[4])
    d_proj_weight = torch.mm(hidden.view(-1, C).t(), d_proj.view(-1, P)).to(dt[5]) if needs[5] else None
    d_bias = flat_gates.sum(0, dtype=sd).to(dt[6]) if needs[6] else None
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
