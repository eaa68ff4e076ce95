import math

import pytest
import torch

from spacy_elmo.bilm.heads import AdaptiveSoftmax, FullSoftmax, SampledSoftmax, make_head


def _data(n=64, p=16, v=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, p, generator=g), torch.randint(0, v, (n,), generator=g)


def test_full_softmax_nll_is_cross_entropy():
    torch.manual_seed(0)
    head = FullSoftmax(16, 50)
    h, t = _data()
    logp = torch.log_softmax(h @ head.weight.T + head.bias, dim=-1)
    assert torch.allclose(head.nll(h, t), -logp[torch.arange(len(t)), t], atol=1e-5)
    assert torch.allclose(head.loss(h, t), head.nll(h, t).mean())
    arrays = head.export_arrays()
    assert arrays["softmax/W"].shape == (50, 16) and arrays["softmax/b"].shape == (50,)


def test_sampled_softmax_eval_is_exact_full_softmax():
    torch.manual_seed(0)
    head = SampledSoftmax(16, 50, n_samples=8).eval()
    h, t = _data()
    assert torch.allclose(head.loss(h, t), FullSoftmax.nll(head, h, t).mean())
    assert torch.allclose(head.nll(h, t), FullSoftmax.nll(head, h, t))


def test_log_uniform_sampler_matches_zipf_distribution():
    torch.manual_seed(0)
    V = 1000
    head = SampledSoftmax(8, V, n_samples=V)
    assert head.sample(torch.device("cpu")).shape == (V,)
    ids = torch.cat([head.sample(torch.device("cpu")) for _ in range(200)])
    assert ids.min() >= 0 and ids.max() < V
    freq = torch.bincount(ids, minlength=V).double() / len(ids)
    for k in (0, 1, 10):
        expected = math.log((k + 2) / (k + 1)) / math.log(V + 1)
        assert abs(freq[k].item() - expected) < 0.1 * expected
    assert torch.allclose(head.log_probs.exp().sum(), torch.tensor(1.0), atol=1e-4)


def test_sampled_softmax_trains_towards_the_full_softmax_optimum():
    torch.manual_seed(0)
    V, P = 40, 8
    head = SampledSoftmax(P, V, n_samples=10)
    h, t = _data(n=256, p=P, v=V)
    before = head.nll(h, t).mean().item()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(150):
        head.train()
        loss = head.loss(h, t)
        assert torch.isfinite(loss)  # accidental hits removed, never -inf - -inf
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert head.nll(h, t).mean().item() < before - 0.5


def test_adaptive_softmax_is_a_normalised_distribution():
    torch.manual_seed(0)
    head = AdaptiveSoftmax(16, 50, cutoffs=[10, 30])
    h, t = _data()
    logp = head.softmax.log_prob(h)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(len(h)), atol=1e-4)
    assert torch.allclose(head.nll(h, t), -logp[torch.arange(len(t)), t], atol=1e-5)
    assert torch.allclose(head.loss(h, t), head.nll(h, t).mean(), atol=1e-5)


def test_make_head_rejects_unknown_type():
    assert isinstance(make_head("adaptive", 32, 100), AdaptiveSoftmax)
    with pytest.raises(ValueError, match="full"):
        make_head("hierarchical", 8, 100)


def test_adaptive_softmax_matches_torchs_own_forward():
    torch.manual_seed(0)
    head = AdaptiveSoftmax(16, 50, cutoffs=[10, 30])
    h, t = _data()
    reference = head.softmax(h, t)
    assert torch.allclose(-head.nll(h, t), reference.output, atol=1e-5)
    assert torch.allclose(head.loss(h, t), reference.loss, atol=1e-5)


@pytest.mark.parametrize("kind", ["full", "sampled", "adaptive"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_head_trains_under_low_precision_autocast_on_cpu(kind, dtype):
    torch.manual_seed(0)
    head = make_head(kind, 16, 50, n_samples=20, cutoffs=[10, 30])
    h, t = _data()
    h.requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype):
        loss = head.loss(h, t)
        nll = head.nll(h, t)
    assert loss.dtype == torch.float32 and nll.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters() if p.requires_grad)
    head.eval()
    # exact in eval: the low-precision nll is the fp32 nll up to bf16/fp16 rounding of the projections
    with torch.no_grad():
        exact = head.nll(h.detach(), t)
        with torch.autocast("cpu", dtype=dtype):
            low = head.nll(h.detach(), t)
    assert torch.allclose(low, exact, rtol=5e-2, atol=5e-2)
