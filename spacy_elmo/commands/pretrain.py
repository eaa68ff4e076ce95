"""`python -m spacy_elmo pretrain CONFIG --output DIR [--init-from BILM_DIR] [--gpu-id N] [--resume] [--section.key value ...]`"""
from pathlib import Path
from typing import Optional

import typer

from .app import app
from .errors import VERBOSE_ENV, friendly_errors


@app.command("pretrain", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def pretrain_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Pretraining config (spaCy config format), e.g. configs/pretrain_small.cfg", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory: checkpoint, metrics, options.json, weights.hdf5, vocab.txt"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id (-1: CPU). Under torchrun each process adds its LOCAL_RANK."),
    resume: bool = typer.Option(False, "--resume", help="Continue from DIR/checkpoint.pt"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files a run writes (options.json, weights.hdf5, vocab.txt, config.cfg, metrics.json, log.jsonl, training_curve.png) already in DIR (refused without it unless DIR holds a checkpoint to resume)"),
    verbose: bool = typer.Option(False, "--verbose", help=f"Show the traceback of an error (or set {VERBOSE_ENV}=1)"),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Continue training this biLM (a folder with bilm-tf's options.json + weights.hdf5: published, or an earlier --output) on the config's corpus: domain adaptation. Its options.json sets the [model] architecture; the vocabulary and softmax are new (same as --paths.init_from)"),
) -> None:
    """Pretrain an ELMo biLM on raw or tokenised text and export it in bilm-tf's layout.
    Config settings can be overridden like in spaCy: --paths.train corpus.txt --training.max_steps 1000.
    With --init-from DIR it continues DIR's biLM instead (--training.freeze_bilm_steps N: a softmax-only warm-up)."""
    from spacy.cli._util import parse_config_overrides

    from ..pretrain.config import load_config, sets_architecture
    from ..pretrain.train import pretrain

    # Problems with the user's settings, files, corpus or disk: one line naming the fix, not a traceback.
    with friendly_errors(verbose):
        overrides = parse_config_overrides(ctx.args)
        if init_from is not None:
            overrides["paths.init_from"] = str(init_from)
        if not sets_architecture(config_path, overrides):
            print(f"{config_path} sets no [model]: " + (
                "on a GPU that is the original ELMo's architecture. Set [model] to choose another, e.g. from "
                "configs/pretrain_small.cfg." if gpu_id >= 0 else
                "on a CPU that is the small biLM of configs/pretrain_small.cfg (the original ELMo's takes tens of "
                "seconds a step on a CPU). Set [model] to choose another, e.g. from configs/pretrain_full.cfg."))
        config = load_config(config_path, overrides, on_gpu=gpu_id >= 0)
        pretrain(config, output, gpu_id=gpu_id, resume=resume, overwrite=overwrite)
