"""The training Function of ProjectedLSTM (lstm_train.py) against the per-op autograd reference
(ProjectedLSTM._forward_autograd_reference), and gradcheck in float64."""
import pytest
import torch

from spacy_elmo.bilm.lstm import ProjectedLSTM
from spacy_elmo.bilm.lstm_train import ProjectedLSTMFunction


def make_layer(D, C, P, cell_clip, proj_clip, seed, scale=1.0, dtype=torch.float32):
    torch.manual_seed(seed)
    layer = ProjectedLSTM(D, C, P, cell_clip=cell_clip, proj_clip=proj_clip).to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, scale)
    return layer.train()


def batch_sizes_of(lengths, T):
    return [sum(1 for n in lengths if n > t) for t in range(T)]


def inputs_for(lengths, D, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    T = max(lengths) if lengths else 0
    x = torch.randn(T, len(lengths), D, dtype=dtype)
    for b, n in enumerate(lengths):
        x[n:, b] = 0
    return x


def run(layer, x, batch_sizes, h0, c0, reference):
    x = x.detach().clone().requires_grad_()
    initial = None
    if h0 is not None:
        h0, c0 = h0.detach().clone().requires_grad_(), c0.detach().clone().requires_grad_()
        initial = (h0, c0)
    layer.zero_grad(set_to_none=True)
    if reference:
        h = h0 if h0 is not None else x.new_zeros(x.shape[1], layer.proj_dim)
        c = c0 if c0 is not None else x.new_zeros(x.shape[1], layer.cell_dim)
        out, (hf, cf) = layer._forward_autograd_reference(x, batch_sizes, h, c)
    else:
        out, (hf, cf) = layer(x, batch_sizes, initial)
    torch.manual_seed(123)
    weights = [torch.randn_like(t, dtype=torch.float32).to(t.dtype) for t in (out, hf, cf)]
    loss = sum((w * t).sum() for w, t in zip(weights, (out, hf, cf)))
    loss.backward()
    # (no steps at all: the reference leaves the weights' grads None, the Function gives zeros)
    grads = {name: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for name, p in layer.named_parameters()}
    grads["x"] = x.grad.clone() if x.grad is not None else torch.zeros_like(x)
    if h0 is not None:
        grads["h0"], grads["c0"] = h0.grad.clone(), c0.grad.clone()
    return (out.detach(), hf.detach(), cf.detach()), grads


def assert_grads_close(new, ref, rtol):
    assert new.keys() == ref.keys()
    for name in ref:
        scale = (float(ref[name].abs().max()) if ref[name].numel() else 0.0) or 1.0
        torch.testing.assert_close(new[name], ref[name], rtol=rtol, atol=rtol * scale, msg=name)


CASES = [
    # (D, C, P, cell_clip, proj_clip, lengths, initial state, weight scale)
    (5, 7, 3, 0.5, 0.4, [9, 6, 6, 2, 1], True, 1.0),
    (5, 7, 3, 0.5, 0.4, [9, 6, 0, 0], True, 1.0),  # zero-length rows keep their initial state
    (4, 6, 3, 0.0, 0.0, [7, 7, 3], False, 0.5),  # no clipping
    (4, 6, 3, 3.0, 0.0, [12, 5, 5, 1], True, 1.0),
    (4, 6, 3, 0.0, 0.3, [12, 5, 5, 1], False, 1.0),
    (3, 5, 4, 1.0, 1.0, [150, 100, 64, 65, 0], True, 0.6),  # crosses time blocks, with ragged rows
]


@pytest.mark.parametrize("case", CASES)
def test_matches_autograd_reference(case):
    D, C, P, cell_clip, proj_clip, lengths, with_initial, scale = case
    layer = make_layer(D, C, P, cell_clip, proj_clip, seed=len(lengths), scale=scale)
    x = inputs_for(lengths, D)
    T = x.shape[0]
    bs = batch_sizes_of(lengths, T)
    h0 = c0 = None
    if with_initial:
        torch.manual_seed(5)
        h0, c0 = torch.randn(len(lengths), P), torch.randn(len(lengths), C)
    (out, hf, cf), grads = run(layer, x, bs, h0, c0, reference=False)
    (ref_out, ref_hf, ref_cf), ref_grads = run(layer, x, bs, h0, c0, reference=True)
    if cell_clip or proj_clip:  # the case does exercise the clipping
        assert (ref_cf.abs() >= cell_clip).any() or (ref_out.abs() >= proj_clip).any()
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(hf, ref_hf, atol=1e-6, rtol=0)
    torch.testing.assert_close(cf, ref_cf, atol=1e-6, rtol=0)
    assert_grads_close(grads, ref_grads, rtol=1e-5)


def test_only_the_needed_gradients_and_none_for_frozen_weights():
    layer = make_layer(4, 6, 3, 1.0, 1.0, seed=0)
    layer.input_weight.requires_grad_(False)
    x = inputs_for([5, 3], 4)
    out, (h, c) = layer(x, batch_sizes_of([5, 3], 5))
    (out.sum() + c.sum()).backward()
    assert layer.input_weight.grad is None
    assert layer.state_weight.grad is not None and layer.bias.grad is not None


def test_retain_graph_backward_twice_gives_the_same_gradients():
    layer = make_layer(4, 6, 3, 0.5, 0.5, seed=1)
    x = inputs_for([6, 4, 1], 4).requires_grad_()
    out, (h, c) = layer(x, batch_sizes_of([6, 4, 1], 6))
    loss = out.pow(2).sum() + h.sum() + c.sum()
    first = torch.autograd.grad(loss, [x, layer.state_weight], retain_graph=True)
    second = torch.autograd.grad(loss, [x, layer.state_weight])
    for a, b in zip(first, second):
        assert torch.equal(a, b)


GRADCHECK_CASES = [
    (3, 4, 2, 0.6, 0.5, [5, 3, 3, 0], True),
    (3, 4, 2, 0.0, 0.0, [4, 2], False),
    (2, 3, 2, 0.7, 0.0, [3, 1, 0], True),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES)
def test_gradcheck_float64(case):
    D, C, P, cell_clip, proj_clip, lengths, with_initial = case
    layer = make_layer(D, C, P, cell_clip, proj_clip, seed=3, scale=1.0, dtype=torch.float64)
    x = inputs_for(lengths, D, dtype=torch.float64, seed=4).requires_grad_()
    T, B = x.shape[:2]
    bs = tuple(batch_sizes_of(lengths, T))
    torch.manual_seed(6)
    h0 = (torch.randn(B, P, dtype=torch.float64) * with_initial).requires_grad_(with_initial)
    c0 = (torch.randn(B, C, dtype=torch.float64) * with_initial).requires_grad_(with_initial)
    params = [p.detach().clone().requires_grad_() for p in (layer.input_weight, layer.state_weight, layer.proj_weight, layer.bias)]
    offset = layer.forget_offset.double()

    def f(x, h0, c0, w_in, w_state, w_proj, bias):
        return ProjectedLSTMFunction.apply(x, h0, c0, w_in, w_state, w_proj, bias, offset, bs, cell_clip, proj_clip,
                                           torch.float64)

    if cell_clip:  # the unclipped cell state would leave [-clip, clip]: clipping is active
        assert unclipped_cells_exceed(x, bs, h0, c0, params, offset, cell_clip)
    if proj_clip:
        with torch.no_grad():
            out, _, _ = ProjectedLSTMFunction.apply(x, h0, c0, *params, offset, bs, cell_clip, 0.0, torch.float64)
        assert (out.abs() > proj_clip).any()
    assert torch.autograd.gradcheck(f, (x, h0, c0, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def unclipped_cells_exceed(x, bs, h0, c0, params, offset, clip):
    """Whether some cell state of the unclipped LSTM leaves [-clip, clip] (final c of each prefix)."""
    with torch.no_grad():
        for t in range(1, x.shape[0] + 1):
            _, _, c = ProjectedLSTMFunction.apply(x[:t], h0, c0, *params, offset, bs[:t], 0.0, 0.0, torch.float64)
            if (c.abs() > clip).any():
                return True
    return False


def test_bf16_autocast_runs_bf16_gemms_with_float32_state_and_gradients():
    layer = make_layer(8, 16, 6, 3.0, 3.0, seed=7, scale=0.3)
    lengths = [20, 17, 9, 0]
    x = inputs_for(lengths, 8)
    bs = batch_sizes_of(lengths, 20)
    (ref_out, _, ref_cf), ref_grads = run(layer, x, bs, None, None, reference=True)  # fp32 reference
    x_ = x.clone().requires_grad_()
    layer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (hf, cf) = layer(x_, bs)
    assert out.dtype == torch.bfloat16 and cf.dtype == torch.float32
    torch.manual_seed(123)
    weights = [torch.randn_like(t, dtype=torch.float32).to(t.dtype) for t in (out, hf, cf)]
    sum((w * t).sum() for w, t in zip(weights, (out, hf, cf))).backward()
    torch.testing.assert_close(out.float(), ref_out, atol=0.05, rtol=0)
    torch.testing.assert_close(cf, ref_cf, atol=0.05, rtol=0)
    for name, p in layer.named_parameters():
        assert p.grad.dtype == torch.float32
        ref = ref_grads[name]
        assert float((p.grad - ref).norm() / ref.norm()) < 0.05, name
    assert x_.grad.dtype == torch.float32
    assert float((x_.grad - ref_grads["x"]).norm() / ref_grads["x"].norm()) < 0.05


def test_bf16_autocast_close_to_the_reference_under_autocast():
    layer = make_layer(8, 16, 6, 3.0, 3.0, seed=8, scale=0.3)
    lengths = [12, 12, 5]
    x = inputs_for(lengths, 8)
    bs = batch_sizes_of(lengths, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(x, bs)
        ref, _ = layer._forward_autograd_reference(x, bs, x.new_zeros(3, 6), x.new_zeros(3, 16))
    torch.testing.assert_close(out.float(), ref.float(), atol=0.03, rtol=0)


def test_bilm_training_with_dropout_matches_reference(monkeypatch):
    from spacy_elmo.bilm.bilm import BiLM
    from spacy_elmo.bilm.options import BiLMOptions

    options = BiLMOptions(lstm_dim=16, projection_dim=8, filters=[(1, 4), (2, 4)], n_highway=1, char_dim=4,
                          cell_clip=1.0, proj_clip=1.0, max_characters_per_token=10)
    results = []
    for mode in ("new", "reference"):
        if mode == "reference":
            monkeypatch.setenv("SPACY_ELMO_LSTM_TRAIN", "reference")
        torch.manual_seed(0)
        bilm = BiLM(options, dropout=0.2).train()
        ids = torch.randint(1, 200, (3, 6, options.max_characters_per_token))
        ids[1, 4:] = 0
        ids[2, 2:] = 0
        torch.manual_seed(1)
        out = bilm(ids).activations
        out.pow(2).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in bilm.named_parameters() if p.grad is not None}))
    (out, grads), (ref_out, ref_grads) = results
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    assert_grads_close(grads, ref_grads, rtol=1e-4)


@pytest.mark.parametrize("lengths", [[0, 0], [3, 3, 3]])
def test_no_steps_and_no_padding(lengths):
    layer = make_layer(4, 6, 3, 0.5, 0.5, seed=2)
    T = max(lengths)
    x = torch.randn(T, len(lengths), 4)
    torch.manual_seed(9)
    h0, c0 = torch.randn(len(lengths), 3), torch.randn(len(lengths), 6)
    bs = batch_sizes_of(lengths, T)
    (out, hf, cf), grads = run(layer, x, bs, h0, c0, reference=False)
    (ref_out, ref_hf, ref_cf), ref_grads = run(layer, x, bs, h0, c0, reference=True)
    assert out.shape == ref_out.shape == (T, len(lengths), 3)
    torch.testing.assert_close(hf, ref_hf, atol=1e-6, rtol=0)
    torch.testing.assert_close(cf, ref_cf, atol=1e-6, rtol=0)
    assert_grads_close(grads, ref_grads, rtol=1e-5)
