"""Dev evaluation: exact (full-softmax) perplexities of both directions, and the best evaluation so far with a
copy of its weights (what training.export = "best" exports)."""
import math
from typing import Any, Dict

import torch

from ..bilm.chars import batch_to_char_ids
from .data import DevSet
from .dev_set import same_dev_set
from .distributed import DistContext
from .model import LanguageModel
from .progress import Progress
from .state import TrainingState
from .vocab import Vocab


def evaluate(model: LanguageModel, dev: DevSet, vocab: Vocab, ctx: DistContext, step: int) -> Dict[str, Any]:
    """Each process evaluates its share of the dev batches; the sums are added over processes."""
    was_training = model.training
    model.eval()
    max_chars = model.bilm.options.max_characters_per_token
    sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
    try:
        for batch in dev.batches[ctx.rank :: ctx.world_size]:
            char_ids = torch.from_numpy(batch_to_char_ids(batch, max_chars)).to(ctx.device)
            targets = vocab.target_ids(batch).to(ctx.device)
            # fp32 evaluation: exact perplexities, and the biLM's in-place inference path takes no autocast
            f, b, n = model.nll_sums(char_ids, targets)
            sums += torch.tensor([f, b, n], dtype=torch.float64, device=ctx.device)
    finally:
        model.train(was_training)
    ctx.all_reduce_sum(sums)
    f, b, n = sums.tolist()
    n = max(n, 1.0)
    return {
        "step": step,
        "forward_perplexity": math.exp(f / n),
        "backward_perplexity": math.exp(b / n),
        "perplexity": math.exp((f + b) / (2 * n)),
        "loss": (f + b) / (2 * n),
        "n_targets": int(n),
        "dev_sentences": len(dev.sentences),
        "dev_digest": dev.digest,
    }


def record_evaluation(model: LanguageModel, dev: DevSet, vocab: Vocab, ctx: DistContext, state: TrainingState,
                      progress: Progress) -> None:
    """Evaluate at state.step, keep the best (rank 0: with a copy of its weights), say it, log it, write metrics."""
    result = evaluate(model, dev, vocab, ctx, state.step)
    state.history.append(result)
    if state.best is not None and not same_dev_set(state.best, result):
        # e.g. --resume with another paths.dev or corpus.dev_max_sentences: perplexities on different text do not
        # compare, so the best so far must not win (or lose) against this one on numbers alone
        progress.say(f"  The dev set differs from the one of the best evaluation so far (step {state.best['step']}, "
                     f"{state.best.get('dev_sentences', '?')} sentences, now {result['dev_sentences']}): "
                     "the best restarts from this evaluation.")
        state.best = None
        # it was the old dev set's, and a resumed run has no training counts to recompute it
        state.extra_metrics.pop("unigram_perplexity", None)
    if state.best is None or result["perplexity"] < state.best["perplexity"]:
        state.best = dict(result)
        if ctx.is_main:  # a copy, not a view: training goes on updating the model in place
            state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    base = state.extra_metrics.get("unigram_perplexity")
    base_txt = f" (unigram baseline {base:.1f})" if base else ""
    best = state.best
    best_txt = "" if best["step"] == result["step"] else f"; best {best['perplexity']:.2f} at step {best['step']}"
    progress.say(f"  dev @ step {result['step']}: perplexity fwd {result['forward_perplexity']:.2f}  "
                 f"bwd {result['backward_perplexity']:.2f}  avg {result['perplexity']:.2f}{base_txt}{best_txt}")
    progress.log("eval", **result)
    progress.write_metrics(state)


__all__ = ["evaluate", "record_evaluation"]
