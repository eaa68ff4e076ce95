"""Wires the `elmo` command group (spacy_elmo.commands) into its three entry points:

    spacy elmo pretrain CONFIG --output DIR ...      (registered through the `spacy_cli` entry point)
    python -m spacy_elmo pretrain CONFIG --output DIR ...   (the same commands; also `spacy-elmo ...`)
"""
import sys
from typing import List, Optional

import typer

from .commands import HELP, app


def register_spacy_cli() -> typer.Typer:
    """The `spacy_cli` entry point: spaCy's CLI imports this at start-up (registry.cli.get_all()), and
    `spacy elmo ...` becomes a command group beside `spacy init`, `spacy debug`."""
    from spacy.cli._util import app as spacy_app

    if not any(group.typer_instance is app for group in spacy_app.registered_groups):
        spacy_app.add_typer(app, name="elmo", help=HELP)
    return app


def main(argv: Optional[List[str]] = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="python -m spacy_elmo")


__all__ = ["app", "main", "register_spacy_cli"]
