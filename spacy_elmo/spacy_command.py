"""Imported by spaCy's CLI through the `spacy_cli` entry point (setup.cfg): adds the `spacy elmo ...` group."""
from .cli import register_spacy_cli

app = register_spacy_cli()
