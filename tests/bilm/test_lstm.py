"""ProjectedLSTM against a plain per-step reference written from the bilm-tf equations."""
import torch

from spacy_elmo.bilm.lstm import ProjectedLSTM


def reference_step_loop(layer: ProjectedLSTM, x: torch.Tensor, lengths, h0=None, c0=None):
    T, B, _ = x.shape
    C = layer.cell_dim
    outs = torch.zeros(T, B, layer.proj_dim)
    finals_h, finals_c = [], []
    for b in range(B):
        h = torch.zeros(layer.proj_dim) if h0 is None else h0[b]
        c = torch.zeros(C) if c0 is None else c0[b]
        for t in range(lengths[b]):
            z = x[t, b] @ layer.input_weight + h @ layer.state_weight + layer.bias + layer.forget_offset
            i, f, o, g = torch.sigmoid(z[:C]), torch.sigmoid(z[C:2 * C]), torch.sigmoid(z[2 * C:3 * C]), torch.tanh(z[3 * C:])
            c = (i * g + f * c).clamp(-layer.cell_clip, layer.cell_clip)
            h = ((o * torch.tanh(c)) @ layer.proj_weight).clamp(-layer.proj_clip, layer.proj_clip)
            outs[t, b] = h
        finals_h.append(h)
        finals_c.append(c)
    return outs, torch.stack(finals_h), torch.stack(finals_c)


def test_matches_reference_with_ragged_lengths_and_initial_state():
    torch.manual_seed(0)
    layer = ProjectedLSTM(5, 7, 3, cell_clip=0.5, proj_clip=0.4)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 1.0)
    lengths = [9, 6, 6, 2, 1]
    x = torch.randn(9, 5, 5)
    for b, n in enumerate(lengths):
        x[n:, b] = 0
    h0, c0 = torch.randn(5, 3), torch.randn(5, 7)
    batch_sizes = [sum(1 for n in lengths if n > t) for t in range(9)]
    with torch.no_grad():
        out, (h, c) = layer(x, batch_sizes, (h0, c0))
        ref, ref_h, ref_c = reference_step_loop(layer, x, lengths, h0, c0)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, ref_c, atol=1e-6, rtol=0)


def test_long_input_crosses_time_blocks():
    torch.manual_seed(1)
    layer = ProjectedLSTM(4, 6, 3, cell_clip=3, proj_clip=3)
    x = torch.randn(150, 2, 4)
    x[100:, 1] = 0
    with torch.no_grad():
        out, _ = layer(x, [2] * 100 + [1] * 50)
        ref, _, _ = reference_step_loop(layer, x, [150, 100])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_training_path_matches_inference_path_and_has_gradients():
    torch.manual_seed(2)
    layer = ProjectedLSTM(5, 7, 3, cell_clip=0.5, proj_clip=0.4)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 1.0)
    lengths = [80, 70, 3]
    batch_sizes = [sum(1 for n in lengths if n > t) for t in range(80)]
    x = torch.randn(80, 3, 5)
    for b, n in enumerate(lengths):
        x[n:, b] = 0
    with torch.no_grad():
        expected, (h_ref, c_ref) = layer(x, batch_sizes)
    layer.train()
    out, (h, c) = layer(x.requires_grad_(), batch_sizes)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, c_ref, atol=1e-6, rtol=0)
    (out.sum() + c.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    assert x.grad[:3].abs().sum() > 0


def test_packed_batch_sorts_longest_first_and_unsorts_back():
    from spacy_elmo.bilm.lstm import PackedBatch

    lengths = torch.tensor([3, 5, 1, 5, 0])
    packed = PackedBatch.from_lengths(lengths, 6)
    assert packed.order.tolist() == [1, 3, 0, 2, 4]  # stable among equal lengths
    assert packed.lengths.tolist() == [5, 5, 3, 1, 0]
    assert packed.batch_sizes == [4, 3, 3, 2, 2, 0]
    assert PackedBatch.lengths_from_batch_sizes(packed.batch_sizes, 5).tolist() == packed.lengths.tolist()
    rows = torch.arange(5) * 10
    assert torch.equal(rows[packed.order][packed.unsort()], rows)
