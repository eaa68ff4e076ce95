"""Thinc layers: the biLM wrapped for Thinc (the pipe's model) and its registered weights loader, the
stored-layers reader and ScalarMix."""
from .bilm_model import BiLMModel, get_bilm, set_bilm
from .listener import ElmoLayersReader
from .loaders import WeightsLoader, create_weights_loader
from .scalar_mix import ScalarMix

__all__ = ["BiLMModel", "ElmoLayersReader", "ScalarMix", "WeightsLoader", "create_weights_loader", "get_bilm", "set_bilm"]
