"""Runs inside the elmoformanylangs venv (tests/manylangs_reference.py builds it), never in the project's.

    python manylangs_worker.py JOB.json

For every variant of the job, elmoformanylangs' own classes build a model with random weights (its
initialisation, then noise so that clipping and every gate matter) and write it in its own format; then its
Embedder reads that directory back and embeds the job's sentences with sents2elmo(output_layer=-2), one
batch from a fresh state. The layers go to JOB's "out" .npz as "<variant>/<sentence index>". A variant with
"existing": true is a directory written by someone else (spacy-elmo's save), only read.
"""
import json
import sys
from pathlib import Path

import numpy
import torch
from elmoformanylangs import Embedder
from elmoformanylangs.frontend import Model
from elmoformanylangs.modules.embedding_layer import EmbeddingLayer


def write_dic(path: Path, tokens) -> dict:
    path.write_text("".join(f"{token}\t{i}\n" for i, token in enumerate(tokens)), encoding="utf-8")
    return {token: i for i, token in enumerate(tokens)}


def build(variant: dict) -> Path:
    directory = Path(variant["dir"])
    directory.mkdir(parents=True, exist_ok=True)
    config = variant["config"]
    (directory / "model.json").write_text(json.dumps(config), encoding="utf-8")
    (directory / "config.json").write_text(json.dumps({"config_path": "model.json", "seed": 1}), encoding="utf-8")
    torch.manual_seed(variant["seed"])
    chars = write_dic(directory / "char.dic", variant["chars"])
    char_layer = EmbeddingLayer(config["token_embedder"]["char_dim"], chars, fix_emb=False, embs=None)
    word_layer = None
    if config["token_embedder"]["word_dim"] > 0:
        words = write_dic(directory / "word.dic", variant["words"])
        word_layer = EmbeddingLayer(config["token_embedder"]["word_dim"], words, fix_emb=False, embs=None)
    model = Model(config, word_layer, char_layer, use_cuda=False)
    with torch.no_grad():  # noise on top of its own initialisation, separately sized for the two parts
        for part, noise in ((model.token_embedder, variant["noise"]), (model.encoder, variant["encoder_noise"])):
            for param in part.parameters():
                param.add_(torch.randn_like(param) * noise)
    legacy = {"_use_new_zipfile_serialization": False} if variant.get("legacy_pickle") else {}
    torch.save(model.token_embedder.state_dict(), directory / "token_embedder.pkl", **legacy)
    torch.save(model.encoder.state_dict(), directory / "encoder.pkl", **legacy)
    return directory


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sentences = job["sentences"]
    arrays = {}
    for variant in job["variants"]:
        directory = Path(variant["dir"]) if variant.get("existing") else build(variant)
        embedder = Embedder(str(directory), batch_size=len(sentences))
        for i, layers in enumerate(embedder.sents2elmo(sentences, output_layer=-2)):
            arrays[f"{variant['name']}/{i}"] = numpy.asarray(layers, dtype=numpy.float32)
    numpy.savez(job["out"], **arrays)


if __name__ == "__main__":
    main()
