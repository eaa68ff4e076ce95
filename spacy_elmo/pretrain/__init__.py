"""biLM pretraining: corpus reading, vocabulary, training loop, checkpoints, export (python -m spacy_elmo pretrain)."""
from .config import DEFAULT_CONFIG, load_config
from .train import NonFiniteLossError, PretrainError, pretrain

__all__ = ["pretrain", "load_config", "DEFAULT_CONFIG", "PretrainError", "NonFiniteLossError"]
