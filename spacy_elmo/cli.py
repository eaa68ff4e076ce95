"""The `elmo` commands, in spaCy's CLI and on their own:

    spacy elmo pretrain CONFIG --output DIR ...      (registered through the `spacy_cli` entry point)
    python -m spacy_elmo pretrain CONFIG --output DIR ...   (the same commands; also `spacy-elmo ...`)
"""
import sys
from typing import List, Optional

import typer

HELP = (
    "ELMo for spaCy: pretrain a biLM on your own text (pretrain) and write ELMo vectors for a text file "
    "(embed). Use the biLM in a pipeline with the 'elmo' component."
)

app = typer.Typer(name="elmo", no_args_is_help=True, add_completion=False, help=HELP)


@app.callback()
def _group() -> None:
    """ELMo for spaCy: pretrain a biLM on your own text, embed text files with it."""


def _register() -> None:
    """Add the commands to `app` (each module decorates it); importing twice is a no-op."""
    from .commands import embed, pretrain  # noqa: F401


def register_spacy_cli() -> typer.Typer:
    """The `spacy_cli` entry point: spaCy's CLI imports this at start-up (registry.cli.get_all()), and
    `spacy elmo ...` becomes a command group beside `spacy init`, `spacy debug`."""
    from spacy.cli._util import app as spacy_app

    _register()
    if not any(group.typer_instance is app for group in spacy_app.registered_groups):
        spacy_app.add_typer(app, name="elmo", help=HELP)
    return app


def main(argv: Optional[List[str]] = None) -> None:
    _register()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="python -m spacy_elmo")
