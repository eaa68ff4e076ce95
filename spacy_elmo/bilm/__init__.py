"""ELMo's biLM in plain PyTorch: no spaCy or Thinc imports below this folder."""
from .bilm import BiLM, BiLMOutput
from .formats import load_bilm, load_bilm_dir, save_bilm, save_bilm_dir
from .manylangs import ManyLangsBiLM, ManyLangsError
from .options import BiLMOptions, OptionsError
from .precision import PRECISIONS, PrecisionError
from .weights import WeightFileError

__all__ = ["BiLM", "BiLMOutput", "BiLMOptions", "ManyLangsBiLM", "ManyLangsError", "OptionsError", "PRECISIONS", "PrecisionError",
           "WeightFileError", "load_bilm", "load_bilm_dir", "save_bilm", "save_bilm_dir"]
