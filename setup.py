"""Metadata and dependencies live in setup.cfg. This file says the one thing setup.cfg cannot: the package's
configs (spacy_elmo/configs in the wheel) are the repository's top-level configs/, mapped at build time, so
they are edited in one place and no copy can drift."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["spacy_elmo", "spacy_elmo.*"]) + ["spacy_elmo.configs"],
    package_dir={"spacy_elmo.configs": "configs"},
    package_data={"spacy_elmo": ["py.typed"], "spacy_elmo.configs": ["*.cfg"]},
)
