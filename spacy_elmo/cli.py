"""`python -m spacy_elmo COMMAND`: each command lives in its own module and is imported only when used."""
import sys
from typing import List, Optional

import typer

app = typer.Typer(name="spacy_elmo", no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback()
def _group() -> None:
    """spacy-elmo: ELMo biLM pretraining, embedding and utilities."""


def _register() -> None:
    # Imported here so that `import spacy_elmo` stays light; a module that is absent simply adds no command.
    for module in ("spacy_elmo.commands.embed", "spacy_elmo.commands.pretrain", "spacy_elmo.commands.convert"):
        try:
            __import__(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def main(argv: Optional[List[str]] = None) -> None:
    _register()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="python -m spacy_elmo")
