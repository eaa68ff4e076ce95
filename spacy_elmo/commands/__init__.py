"""The CLI: `spacy elmo ...`, `python -m spacy_elmo ...` and `spacy-elmo ...` run this one app.

Each command module adds itself to `app` when imported; importing this package imports them all.
"""
from .app import HELP, app
from . import embed, init_config, pretrain  # noqa: E402,F401  (registers the commands)

__all__ = ["app", "HELP"]
