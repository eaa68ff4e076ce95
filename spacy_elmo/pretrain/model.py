"""The model under training: the biLM with one softmax shared by both directions, built from the resolved
settings, its optimizer, and the switch that freezes the biLM (training.freeze_bilm_steps)."""
from typing import Iterable, Optional, Tuple

import torch
from torch import nn

from ..bilm.bilm import BiLM
from ..bilm.heads import LMHead, make_head
from ..bilm.options import BiLMOptions
from .config import Settings, TrainingSettings
from .training_bilm import TrainingBiLM


class LanguageModel(nn.Module):
    """biLM + one softmax shared by both directions. forward() returns the training loss: the mean of
    the forward LM loss (state at t predicts token t+1, </S> included) and the backward LM loss (state at
    t predicts t-1, <S> included)."""

    def __init__(self, bilm: BiLM, head: LMHead, dropout: float = 0.0) -> None:
        super().__init__()
        self.bilm, self.head, self.dropout = bilm, head, dropout

    def _states(self, char_ids: torch.Tensor, targets: torch.Tensor):
        top = self.bilm.forward_with_boundaries(char_ids).activations[-1]  # (B, T+2, 2P)
        if self.dropout:
            top = nn.functional.dropout(top, self.dropout, self.training)
        P = top.shape[-1] // 2
        valid = (targets[:, 1:] != -100) & (targets[:, :-1] != -100)  # both ends of the pair exist
        fwd_h, fwd_t = top[:, :-1, :P][valid], targets[:, 1:][valid]
        bwd_h, bwd_t = top[:, 1:, P:][valid], targets[:, :-1][valid]
        return fwd_h, fwd_t, bwd_h, bwd_t

    def forward(self, char_ids: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fwd_h, fwd_t, bwd_h, bwd_t = self._states(char_ids, targets)
        fwd = self.head.loss(fwd_h, fwd_t)
        bwd = self.head.loss(bwd_h, bwd_t)
        return 0.5 * (fwd + bwd), fwd.detach(), bwd.detach()

    @torch.no_grad()
    def nll_sums(self, char_ids: torch.Tensor, targets: torch.Tensor) -> Tuple[float, float, int]:
        """Exact (full-softmax) summed NLL of both directions and the number of targets per direction."""
        fwd_h, fwd_t, bwd_h, bwd_t = self._states(char_ids, targets)
        return float(self.head.nll(fwd_h, fwd_t).sum()), float(self.head.nll(bwd_h, bwd_t).sum()), int(fwd_t.numel())


def bilm_options(settings: Settings, init_options: Optional[BiLMOptions], vocab_size: int) -> BiLMOptions:
    """The options the biLM is built with: --init-from DIR's (its n_characters and other keys kept) or [model]'s,
    plus the training keys exported with it."""
    if init_options is not None:
        options = BiLMOptions.from_dict(init_options.to_dict())
        options.extra["init_from"] = str(settings.paths.init_from)
    else:
        options = settings.model.bilm_options()
    options.extra.update({"bidirectional": True, "dropout": settings.model.dropout, "n_tokens_vocab": vocab_size})
    return options


def count_bilm_parameters(options: BiLMOptions) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return sum(p.numel() for p in BiLM(options).parameters())


def architecture_line(options: BiLMOptions, source: str) -> str:
    return (f"Architecture ({source}): biLM lstm_dim {options.lstm_dim} x {options.n_layers} layers, projection_dim "
            f"{options.projection_dim}, {len(options.filters)} char filter widths ({options.n_filters} filters), "
            f"{options.n_highway} highway: {count_bilm_parameters(options) / 1e6:.2f}M parameters, plus the softmax "
            "over the vocabulary")


def build_model(settings: Settings, options: BiLMOptions, vocab_size: int, device: torch.device) -> LanguageModel:
    """Seeded from training.seed: the same settings give the same initial model."""
    m, s = settings.model, settings.softmax
    torch.manual_seed(settings.training.seed)
    bilm = TrainingBiLM(options, dropout=m.dropout)
    head = make_head(s.type, options.projection_dim, vocab_size, n_samples=s.n_samples, cutoffs=list(s.cutoffs),
                     div_value=s.div_value)
    return LanguageModel(bilm, head, dropout=m.dropout).to(device)


def make_optimizer(training: TrainingSettings, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    if training.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=training.learning_rate,
                                   initial_accumulator_value=training.initial_accumulator_value)
    return torch.optim.Adam(params, lr=training.learning_rate)  # check_config allows only these two


def set_bilm_trainable(model: LanguageModel, trainable: bool) -> None:
    """training.freeze_bilm_steps: while frozen no gradient reaches the biLM (nor its optimizer state)."""
    for param in model.bilm.parameters():
        param.requires_grad_(trainable)


def trained_module(model: LanguageModel, settings: Settings, device: torch.device, distributed: bool) -> nn.Module:
    """The module the steps run: the model itself, or its DistributedDataParallel wrapper."""
    if not distributed:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=settings.softmax.type == "adaptive" or settings.training.freeze_bilm_steps > 0,
    )


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of a step: dropout and sampled negatives are a function of (seed, step, rank), so a resumed
    run draws exactly what the uninterrupted one would."""
    return ((int(seed) * 1_000_003 + int(step)) * 1009 + int(rank)) % (2**63 - 1)


__all__ = ["LanguageModel", "bilm_options", "count_bilm_parameters", "architecture_line", "build_model",
           "make_optimizer", "set_bilm_trainable", "trained_module", "step_seed"]
