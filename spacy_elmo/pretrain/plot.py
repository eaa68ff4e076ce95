"""PNG of the training curve (train loss, dev perplexities). matplotlib is optional."""
import json
from pathlib import Path
from typing import List, Optional, Union

from .dev_set import on_last_dev_set


def plot_training_curve(log_path: Union[str, Path], metrics_path: Union[str, Path], output: Union[str, Path]) -> Optional[str]:
    """Returns None on success, else a message saying why no plot was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no training-curve PNG (pip install matplotlib to get one)."
    rows: List[dict] = []
    if Path(log_path).is_file():
        for line in Path(log_path).read_text(encoding="utf8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    train = [r for r in rows if r.get("event") == "train"]
    history = []
    if Path(metrics_path).is_file():
        history = json.loads(Path(metrics_path).read_text(encoding="utf8")).get("history", [])
    # after a --resume with another dev set, the earlier perplexities are on other text: only the last set's are drawn
    shown = on_last_dev_set(history)
    left_out = len(history) - len(shown)
    history = shown
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax1.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss (nats/token)")
    ax1.set_title("training loss")
    if train:
        ax1.legend()
    if history:
        steps = [h["step"] for h in history]
        for key, label in (("forward_perplexity", "forward"), ("backward_perplexity", "backward"), ("perplexity", "average")):
            ax2.plot(steps, [h[key] for h in history], marker="o", label=label)
        ax2.set_yscale("log")
        ax2.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("dev perplexity (full softmax)")
    ax2.set_title("held-out perplexity" + (f" ({left_out} on an earlier dev set not shown)" if left_out else ""))
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(output), dpi=90)
    plt.close(fig)
    return None


__all__ = ["plot_training_curve"]
