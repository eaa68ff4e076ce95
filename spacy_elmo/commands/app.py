"""The `elmo` command group: one typer app that every command module adds itself to with @app.command()."""
import typer

from .errors import VERBOSE_ENV, set_verbose

HELP = (
    "ELMo for spaCy: pretrain a biLM on your own text (pretrain), write ELMo vectors for a text file "
    "(embed), write a starting config (init-config). Use the biLM in a pipeline with the 'elmo' component."
)

app = typer.Typer(name="elmo", no_args_is_help=True, add_completion=False, help=HELP,
                  pretty_exceptions_enable=False)


@app.callback()
def _group(
    verbose: bool = typer.Option(False, "--verbose", help=f"Show the traceback of an error (or set {VERBOSE_ENV}=1)"),
) -> None:
    """ELMo for spaCy: pretrain a biLM on your own text, embed text files with it, write a starting config."""
    set_verbose(verbose)
