"""Language-model heads for biLM pretraining: full, sampled (log-uniform) and adaptive softmax.

One head is shared by the forward and the backward LM, as in bilm-tf (one softmax/W, softmax/b).
Every head offers:
  loss(hidden (N, P), targets (N,)) -> scalar mean training loss (an estimate for "sampled");
  nll(hidden (N, P), targets (N,))  -> (N,) exact negative log-likelihood under the full distribution,
                                       for evaluation and perplexity.
Pure PyTorch: nothing from spaCy or Thinc.
"""
import math
from typing import Dict, Optional, Sequence

import numpy
import torch
from torch import nn


class LMHead(nn.Module):
    kind = "base"

    def __init__(self, input_dim: int, n_classes: int) -> None:
        super().__init__()
        self.input_dim, self.n_classes = input_dim, n_classes

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def export_arrays(self) -> Dict[str, numpy.ndarray]:
        """bilm-tf's softmax datasets (softmax/W (V, P), softmax/b (V,)) when the head has them."""
        return {}


class FullSoftmax(LMHead):
    """logits = h W^T + b over the whole vocabulary."""

    kind = "full"

    def __init__(self, input_dim: int, n_classes: int) -> None:
        super().__init__(input_dim, n_classes)
        self.weight = nn.Parameter(torch.empty(n_classes, input_dim))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        # bilm-tf initialises softmax/W with a normal of stddev 1/sqrt(P).
        nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(input_dim))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(hidden, self.weight, self.bias)

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.logits(hidden).float(), targets, reduction="none")

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.nll(hidden, targets).mean()

    def export_arrays(self) -> Dict[str, numpy.ndarray]:
        return {
            "softmax/W": self.weight.detach().float().cpu().numpy(),
            "softmax/b": self.bias.detach().float().cpu().numpy(),
        }


class SampledSoftmax(FullSoftmax):
    """tf.nn.sampled_softmax_loss as bilm-tf uses it: a log-uniform (Zipfian) candidate sampler over a
    vocabulary sorted by descending frequency, one set of n_samples negatives shared by the batch,
    logits corrected by subtracting log(expected count), accidental hits removed.
    Negatives are drawn with replacement, so expected count = n_samples * p(class).
    In eval mode (or through nll()) the exact full-softmax loss is computed."""

    kind = "sampled"
    log_probs: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, input_dim: int, n_classes: int, n_samples: int = 8192) -> None:
        super().__init__(input_dim, n_classes)
        self.n_samples = int(min(n_samples, n_classes))
        ranks = torch.arange(n_classes, dtype=torch.float64)
        log_probs = torch.log(torch.log((ranks + 2.0) / (ranks + 1.0)) / math.log(n_classes + 1.0))
        self.register_buffer("log_probs", log_probs.float(), persistent=False)

    def sample(self, device: torch.device, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """n_samples class ids from P(k) = log((k+2)/(k+1)) / log(V+1), by inverting the CDF."""
        u = torch.rand(self.n_samples, dtype=torch.float64, generator=generator).to(device)
        ids = torch.floor(torch.exp(u * math.log(self.n_classes + 1.0))).long() - 1
        return ids.clamp_(0, self.n_classes - 1)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().loss(hidden, targets)
        samples = self.sample(hidden.device)
        log_expected_true = self.log_probs[targets] + math.log(self.n_samples)
        log_expected_sampled = self.log_probs[samples] + math.log(self.n_samples)
        true_logits = (hidden * self.weight[targets]).sum(-1) + self.bias[targets]
        sampled_logits = nn.functional.linear(hidden, self.weight[samples], self.bias[samples])
        true_logits = true_logits.float() - log_expected_true
        sampled_logits = sampled_logits.float() - log_expected_sampled
        hits = targets.unsqueeze(1) == samples.unsqueeze(0)
        sampled_logits = sampled_logits.masked_fill(hits, float("-inf"))
        logits = torch.cat([true_logits.unsqueeze(1), sampled_logits], dim=1)
        return (torch.logsumexp(logits, dim=1) - true_logits).mean()


class AdaptiveSoftmax(LMHead):
    """torch.nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017); the vocabulary must be sorted by frequency."""

    kind = "adaptive"

    def __init__(self, input_dim: int, n_classes: int, cutoffs: Sequence[int] = (), div_value: float = 4.0) -> None:
        super().__init__(input_dim, n_classes)
        cutoffs = [int(c) for c in cutoffs if 0 < int(c) < n_classes]
        if not cutoffs:
            cutoffs = [c for c in (n_classes // 20, n_classes // 4) if 0 < c < n_classes]
        cutoffs = sorted(set(cutoffs)) or [max(1, n_classes // 2)]
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(input_dim, n_classes, cutoffs, div_value=div_value)

    def target_log_probs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N,) float32 log p(target), the same function as AdaptiveLogSoftmaxWithLoss.forward(...).output
        with the same parameters. Written out because torch's version copies the clusters' log-probs into
        an output of the input's dtype with index_copy_, which fails under bf16/fp16 autocast (the
        projections come out in the low dtype). Here the projections run in whatever autocast picks (bf16
        GEMMs on the training path) and every log_softmax and the result are float32."""
        softmax = self.softmax
        bounds = [0] + list(softmax.cutoffs)
        head_columns = targets.clone()
        cluster_log_probs = torch.zeros(targets.shape[0], dtype=torch.float32, device=hidden.device)
        for cluster in range(1, len(bounds) - 1):
            low, high = bounds[cluster], bounds[cluster + 1]
            rows = ((targets >= low) & (targets < high)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            local = torch.log_softmax(softmax.tail[cluster - 1](hidden[rows]).float(), dim=1)
            picked = local.gather(1, (targets[rows] - low).unsqueeze(1)).squeeze(1)
            cluster_log_probs = cluster_log_probs.index_put((rows,), picked)
            head_columns = head_columns.index_fill(0, rows, softmax.shortlist_size + cluster - 1)
        head = torch.log_softmax(softmax.head(hidden).float(), dim=1)
        return head.gather(1, head_columns.unsqueeze(1)).squeeze(1) + cluster_log_probs

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return -self.target_log_probs(hidden, targets).mean()

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return -self.target_log_probs(hidden, targets)


def make_head(kind: str, input_dim: int, n_classes: int, n_samples: int = 8192,
              cutoffs: Sequence[int] = (), div_value: float = 4.0) -> LMHead:
    if kind == "full":
        return FullSoftmax(input_dim, n_classes)
    if kind == "sampled":
        return SampledSoftmax(input_dim, n_classes, n_samples)
    if kind == "adaptive":
        return AdaptiveSoftmax(input_dim, n_classes, cutoffs, div_value)
    raise ValueError(f"Unknown softmax type {kind!r}; use 'full', 'sampled' or 'adaptive'.")


__all__ = ["LMHead", "FullSoftmax", "SampledSoftmax", "AdaptiveSoftmax", "make_head"]
