"""Thinc layers: the biLM wrapped for Thinc (the pipe's model), the stored-layers reader and ScalarMix."""
from .bilm_model import BiLMModel, get_bilm, set_bilm
from .listener import ElmoLayersReader
from .scalar_mix import ScalarMix

__all__ = ["BiLMModel", "ElmoLayersReader", "ScalarMix", "get_bilm", "set_bilm"]
