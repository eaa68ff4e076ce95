"""Runs inside the AllenNLP reference venv (see allennlp_reference.py), never with the project's python.

    <allennlp venv>/bin/python bench/_allennlp_worker.py request.json

Only the standard library, torch, numpy and allennlp: spacy_elmo is not installed there. The request names
the options/weight files, the torch thread count, optional parity sentences (their layer outputs go to an
.npz) and the timed runs (batch size + sentences). One JSON object goes to stdout as the last line.
"""
import json
import sys
import time
import types
import warnings
from typing import List, Sequence


def embed(bilm, batch_to_ids, sentences: Sequence[Sequence[str]], batch_size: int) -> list:
    """The same work as BiLM.embed_sentences: batches in length order (the least padding, as ours), char ids,
    forward, boundaries stripped, one float32 array (n_layers + 1, n_tokens, 2P) per sentence in input order."""
    import numpy
    import torch

    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    results: List = [None] * len(sentences)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids = batch_to_ids([list(sentences[i]) for i in rows])
            acts = torch.stack(bilm(ids)["activations"]).numpy()  # (L, B, T + 2, 2P), <S> at 0
            for j, i in enumerate(rows):
                results[i] = numpy.ascontiguousarray(acts[:, j, 1 : len(sentences[i]) + 1])
    return results


def main() -> None:
    with open(sys.argv[1], encoding="utf8") as f:
        request = json.load(f)
    # allennlp.data.image_loader imports torchvision at module level; the ELMo path never calls it, and PyPI's
    # torchvision does not load beside a local CPU torch build, so an empty module stands in for it.
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    warnings.filterwarnings("ignore")  # fairscale/transformers deprecation noise on a current torch
    import numpy
    import torch

    torch.set_num_threads(request["threads"])
    import allennlp
    from allennlp.modules.elmo import _ElmoBiLm, batch_to_ids

    def fresh() -> "_ElmoBiLm":
        bilm = _ElmoBiLm(request["options_file"], request["weight_file"], requires_grad=False)
        return bilm.eval()

    out = {"torch": torch.__version__, "allennlp": allennlp.__version__, "threads": torch.get_num_threads(), "runs": []}
    if request.get("parity_sentences"):
        # AllenNLP's LSTMs are stateful: a fresh module and one batch start from zero state, as ours does.
        arrays = embed(fresh(), batch_to_ids, request["parity_sentences"], len(request["parity_sentences"]))
        numpy.savez(request["parity_out"], *arrays)
    if request.get("runs"):
        bilm = fresh()
        for run in request["runs"]:
            batch_size, sentences = run["batch_size"], run["sentences"]
            bilm._elmo_lstm.reset_states()  # each batch size starts from zero state
            embed(bilm, batch_to_ids, sentences[:batch_size], batch_size)  # warm-up, as bench_bilm.py
            start = time.perf_counter()
            embed(bilm, batch_to_ids, sentences, batch_size)
            seconds = time.perf_counter() - start
            out["runs"].append({"batch_size": batch_size, "tokens": sum(len(s) for s in sentences), "seconds": seconds})
            print(f"allennlp batch {batch_size}: {seconds:.2f} s", file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
