"""paths.init_from (--init-from DIR): continue training a biLM in bilm-tf's layout (published, or an earlier
run's export) on a new corpus. DIR's options.json sets the architecture; its weights start the biLM; its
softmax rows start the new softmax's rows of the tokens both vocabularies share (softmax.reuse)."""
from pathlib import Path
from typing import Callable, Optional

import torch
from confection import Config

from ..bilm.formats import MANYLANGS, detect_format
from ..bilm.heads import FullSoftmax, LMHead
from ..bilm.options import BiLMOptions, OptionsError
from ..bilm.weights import WeightFileError, check_weight_file, load_weights, read_extra_dataset
from . import checkpoint as ckpt
from .config import Settings, architecture_settings
from .errors import PretrainError
from .model import LanguageModel
from .progress import Progress
from .vocab import Vocab


def check_init_from(settings: Settings, output: Path, resume: bool) -> Optional[BiLMOptions]:
    """DIR's options, refused before --output is touched when DIR cannot be used. None without --init-from, and on
    --resume of a checkpoint (its weights win; init_options_on_resume reads the architecture from it)."""
    value = settings.paths.init_from
    if not value:
        return None
    source = Path(value)
    if source.resolve() == output.resolve():
        raise PretrainError(
            f"--init-from {source} is --output itself: the run would replace the biLM it starts from. Choose "
            "another --output (to continue a run of this tool in its own folder, use --resume)."
        )
    if resume and ckpt.checkpoint_path(output).is_file():
        return None
    if not source.is_dir():
        raise PretrainError(f"--init-from {source}: no such directory (it must hold bilm-tf's options.json + weights.hdf5).")
    if detect_format(source)[0] == MANYLANGS:
        # Its learned character and word vocabularies have no place in the byte-level biLM this tool trains.
        raise PretrainError(
            f"--init-from {source} holds an ELMoForManyLangs model, which pretrain cannot continue: it trains "
            "bilm-tf's byte-level character biLM. Use the model as it is (nlp.add_pipe('elmo', config={'weights': DIR})), "
            "or pretrain from scratch or from a bilm-tf model (options.json + weights.hdf5)."
        )
    missing = [name for name in ("options.json", "weights.hdf5") if not (source / name).is_file()]
    if missing:
        raise PretrainError(
            f"--init-from {source} has no {' and no '.join(missing)}: it must hold a biLM in bilm-tf's layout "
            "(options.json + weights.hdf5), e.g. a published ELMo or the --output of an earlier pretrain."
        )
    try:
        options = BiLMOptions.from_file(source / "options.json")
        check_weight_file(source / "weights.hdf5", options)
    except (OptionsError, WeightFileError) as err:
        raise PretrainError(f"--init-from {source}: {err}") from err
    return options


def init_options_on_resume(settings: Settings, output: Path, say: Callable[[str], None]) -> Optional[BiLMOptions]:
    """On --resume the architecture comes from the checkpoint, so DIR need not exist any more."""
    if not settings.paths.init_from:
        return None
    saved = ckpt.load_checkpoint(output, mmap=True)
    if saved.get("bilm_options") is None:
        return None  # a checkpoint of a run without --init-from: the resume check names paths.init_from as changed
    say(f"--resume: the biLM continues from {ckpt.checkpoint_path(output)}; --init-from {settings.paths.init_from} "
        "is not read again.")
    return BiLMOptions.from_dict(saved["bilm_options"])


def adopt_architecture(config: Config, options: BiLMOptions, source: str, say: Optional[Callable[[str], None]]) -> Config:
    """The config with DIR's architecture in [model] (every setting but dropout; DIR wins over the config, and
    say names the replaced values): what config.cfg records and --resume compares."""
    wanted = architecture_settings(options)
    changed = {key: value for key, value in wanted.items() if config["model"].get(key) != value}
    if not changed:
        return config
    if say is not None:
        say(f"--init-from {source}: its options.json sets the biLM's architecture, over the config's [model]: "
            + ", ".join(f"{key} {config['model'].get(key)!r} -> {value!r}" for key, value in changed.items()))
    adopted = Config().from_str(config.to_str())
    for key, value in changed.items():
        adopted["model"][key] = value
    return adopted


def load_init_from(model: LanguageModel, settings: Settings, vocab: Vocab, progress: Progress) -> None:
    """The biLM's weights exactly as DIR/weights.hdf5 holds them; the softmax new, or in part DIR's own
    (softmax.reuse) when DIR is an earlier run of this tool with a full or sampled softmax."""
    source = Path(str(settings.paths.init_from))
    try:
        load_weights(model.bilm, source / "weights.hdf5")
    except WeightFileError as err:
        raise PretrainError(f"--init-from {source}: {err}") from err
    reused = reuse_softmax(model.head, source, vocab, progress.say) if settings.softmax.reuse else 0
    head = (f"softmax rows of {reused:,} of the {len(vocab):,} tokens from its softmax/W and softmax/b, the rest new"
            if reused else f"a new {settings.softmax.type} softmax over the {len(vocab):,} tokens of the vocabulary")
    frozen = settings.training.freeze_bilm_steps
    progress.say(f"--init-from {source}: biLM weights from weights.hdf5; {head}"
                 + (f"; the first {frozen:,} step(s) train the softmax only" if frozen else ""))
    progress.log("init_from", path=str(source), softmax_rows_reused=reused, freeze_bilm_steps=frozen)


def reuse_softmax(head: LMHead, source: Path, vocab: Vocab, say: Callable[[str], None]) -> int:
    """Copy DIR's softmax rows of the tokens in both vocabularies; the number of rows copied."""
    vocab_file, weight_file = source / "vocab.txt", source / "weights.hdf5"
    if not isinstance(head, FullSoftmax) or not vocab_file.is_file():
        return 0  # the adaptive softmax has no softmax/W; published biLMs have no vocab.txt
    # Held to the weights' rules: an untrusted file cannot bring outside or unwritten data in through these.
    weight, bias = read_extra_dataset(weight_file, "softmax/W"), read_extra_dataset(weight_file, "softmax/b")
    if weight is None or bias is None:
        return 0
    try:
        old = Vocab.from_file(vocab_file)
    except (ValueError, UnicodeDecodeError):
        return 0
    if weight.shape != (len(old), head.input_dim) or bias.shape != (len(old),):
        say(f"--init-from {source}: softmax/W {weight.shape} does not fit its vocab.txt ({len(old):,} tokens) "
            f"and projection {head.input_dim}: not reused.")
        return 0
    pairs = [(i, old.index[token]) for i, token in enumerate(vocab.tokens) if token in old.index]
    new_rows = torch.tensor([i for i, _ in pairs], dtype=torch.long, device=head.weight.device)
    old_rows = [j for _, j in pairs]
    with torch.no_grad():
        head.weight[new_rows] = torch.from_numpy(weight[old_rows]).to(head.weight)
        head.bias[new_rows] = torch.from_numpy(bias[old_rows]).to(head.bias)
    return len(pairs)


__all__ = ["check_init_from", "init_options_on_resume", "adopt_architecture", "load_init_from", "reuse_softmax"]
