"""CLI commands; each module registers itself on spacy_elmo.cli.app with @app.command()."""
