"""spacy-elmo: ELMo (Peters et al. 2018) as a first-class spaCy 3 component."""
from .about import __version__
from .bilm import PRECISIONS, BiLM, BiLMOptions, OptionsError, PrecisionError, WeightFileError, load_bilm, save_bilm

version = __version__

__all__ = ["PRECISIONS", "BiLM", "BiLMOptions", "OptionsError", "PrecisionError", "WeightFileError", "load_bilm", "save_bilm", "version", "__version__"]
