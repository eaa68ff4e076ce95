"""ELMo's biLM in plain PyTorch: no spaCy or Thinc imports below this folder."""
from .bilm import BiLM, BiLMOutput
from .options import BiLMOptions, OptionsError
from .precision import PRECISIONS, PrecisionError
from .weights import WeightFileError, load_bilm, save_bilm

__all__ = ["BiLM", "BiLMOutput", "BiLMOptions", "OptionsError", "PRECISIONS", "PrecisionError", "WeightFileError", "load_bilm", "save_bilm"]
