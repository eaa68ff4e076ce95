"""Highway layers in bilm-tf's form: y = g * relu(x W_t + b_t) + (1 - g) * x, g = sigmoid(x W_c + b_c)."""
import torch
from torch import nn

from .module_list import ModuleListOf


class Highway(nn.Module):
    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.carry = ModuleListOf(nn.Linear(dim, dim) for _ in range(n_layers))
        self.transform = ModuleListOf(nn.Linear(dim, dim) for _ in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for carry, transform in zip(self.carry, self.transform):
            gate = torch.sigmoid(carry(x))
            x = gate * torch.relu(transform(x)) + (1.0 - gate) * x
        return x
