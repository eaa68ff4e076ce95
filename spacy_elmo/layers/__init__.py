"""Thinc layers over stored ELMo activations."""
from .listener import ElmoLayersReader
from .scalar_mix import ScalarMix

__all__ = ["ElmoLayersReader", "ScalarMix"]
