"""Read and write bilm-tf's interchange layout: options.json + weights.hdf5 (the AllenNLP layout too).

TF conventions converted here, nowhere else:
- conv kernels (1, width, char_dim, n) <-> Conv1d (n, char_dim, width);
- dense kernels are (in, out) like our stored matrices; nn.Linear wants (out, in);
- LSTM W_0 is (input + proj, 4 * dim) with gate blocks [i, j, f, o]; ours are [i, f, o, j];
- TF adds forget_bias = 1.0 at run time; so does ProjectedLSTM, so B is stored as is;
- char_embed has 261 rows in the file; we prepend a zero row for padding id 0.
"""
import json
from pathlib import Path
from typing import Dict, Iterator, Tuple, Union

import h5py
import numpy
import torch

from .atomic import atomic_write
from .bilm import BiLM
from .options import BiLMOptions, OptionsError

PathLike = Union[str, Path]


class WeightFileError(ValueError):
    pass


def _tf_to_ours(gates: numpy.ndarray, dim: int) -> numpy.ndarray:
    i, j, f, o = (gates[..., k * dim : (k + 1) * dim] for k in range(4))
    return numpy.concatenate([i, f, o, j], axis=-1)


def _ours_to_tf(gates: numpy.ndarray, dim: int) -> numpy.ndarray:
    i, f, o, j = (gates[..., k * dim : (k + 1) * dim] for k in range(4))
    return numpy.concatenate([i, j, f, o], axis=-1)


def _lstm_prefix(direction: int, layer: int) -> str:
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def expected_shapes(options: BiLMOptions) -> Dict[str, Tuple[int, ...]]:
    """Every dataset of weights.hdf5 with its shape, in bilm-tf's naming."""
    shapes: Dict[str, Tuple[int, ...]] = {"char_embed": (261, options.char_dim)}
    for k, (width, n) in enumerate(options.filters):
        shapes[f"CNN/W_cnn_{k}"] = (1, width, options.char_dim, n)
        shapes[f"CNN/b_cnn_{k}"] = (n,)
    F = options.n_filters
    for k in range(options.n_highway):
        for part in ("carry", "transform"):
            shapes[f"CNN_high_{k}/W_{part}"] = (F, F)
            shapes[f"CNN_high_{k}/b_{part}"] = (F,)
    P, C = options.projection_dim, options.lstm_dim
    shapes["CNN_proj/W_proj"] = (F, P)
    shapes["CNN_proj/b_proj"] = (P,)
    for d in range(2):
        for layer in range(options.n_layers):
            prefix = _lstm_prefix(d, layer)
            shapes[f"{prefix}/W_0"] = (P + P, 4 * C)
            shapes[f"{prefix}/B"] = (4 * C,)
            shapes[f"{prefix}/W_P_0"] = (C, P)
    return shapes


def _dataset(fin: h5py.File, key: str, shape: Tuple[int, ...], path: Path) -> h5py.Dataset:
    """fin[key], checked from the file's metadata alone: present, a dataset, of the expected shape."""
    try:
        node = fin.get(key)
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        raise WeightFileError(f"{path}: dataset '{key}' cannot be read ({err}); the file is corrupt or truncated.") from err
    if node is None:
        raise WeightFileError(f"{path}: dataset '{key}' is missing (expected shape {shape}). Does options.json belong to this weight file?")
    if not isinstance(node, h5py.Dataset):
        raise WeightFileError(f"{path}: '{key}' is an HDF5 {type(node).__name__.lower()}, not a dataset of shape {shape}; the file is not a bilm-tf weight file.")
    if node.shape != shape:
        raise WeightFileError(
            f"{path}: dataset '{key}' has shape {node.shape}, expected {shape} from options.json. "
            "Use the options.json that was saved with these weights."
        )
    return node


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise WeightFileError(f"Weight file not found: {path}. Expected bilm-tf's weights.hdf5.")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise WeightFileError(f"{path} is not a readable HDF5 file ({err}); it may be truncated or corrupt.") from err


def check_weight_file(weight_file: PathLike, options: BiLMOptions) -> None:
    """Every dataset that the options call for is in the file with the right shape. Reads only the
    file's metadata, so a mismatched or hostile options.json is refused before a model of its size is
    allocated."""
    path = Path(weight_file)
    with _open(path) as fin:
        for key, shape in expected_shapes(options).items():
            _dataset(fin, key, shape, path)


def _read(fin: h5py.File, key: str, shape: Tuple[int, ...], path: Path) -> numpy.ndarray:
    node = _dataset(fin, key, shape, path)
    try:
        array = numpy.asarray(node[...], dtype=numpy.float32)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
        raise WeightFileError(f"{path}: dataset '{key}' cannot be read ({err}); the file is corrupt or truncated.") from err
    if not numpy.isfinite(array).all():
        raise WeightFileError(f"{path}: dataset '{key}' contains NaN or inf values; the file is corrupt.")
    return array


def _params(bilm: BiLM) -> Iterator[Tuple[str, torch.Tensor, str]]:
    """(hdf5 key, our tensor, how to convert) for every weight."""
    cnn = bilm.char_cnn
    yield "char_embed", cnn.char_embed.weight, "char_embed"
    for k, conv in enumerate(cnn.convs):
        yield f"CNN/W_cnn_{k}", conv.weight, "conv"
        yield f"CNN/b_cnn_{k}", conv.bias, "copy"
    for k, (carry, transform) in enumerate(zip(cnn.highway.carry, cnn.highway.transform)):
        yield f"CNN_high_{k}/W_carry", carry.weight, "linear"
        yield f"CNN_high_{k}/b_carry", carry.bias, "copy"
        yield f"CNN_high_{k}/W_transform", transform.weight, "linear"
        yield f"CNN_high_{k}/b_transform", transform.bias, "copy"
    yield "CNN_proj/W_proj", cnn.projection.weight, "linear"
    yield "CNN_proj/b_proj", cnn.projection.bias, "copy"


def _file_to_tensor(array: numpy.ndarray, how: str) -> numpy.ndarray:
    if how == "char_embed":
        return numpy.concatenate([numpy.zeros((1, array.shape[1]), numpy.float32), array])
    if how == "conv":
        return array[0].transpose(2, 1, 0)  # (width, char_dim, n) -> (n, char_dim, width)
    if how == "linear":
        return array.T
    return array


def _tensor_to_file(array: numpy.ndarray, how: str) -> numpy.ndarray:
    if how == "char_embed":
        return array[1:]
    if how == "conv":
        return array.transpose(2, 1, 0)[None]
    if how == "linear":
        return array.T
    return array


def load_bilm(options_file: PathLike, weight_file: PathLike, stateful: bool = False, char_cache_size: int = 0,
              precision: str = "float32", strict_precision: bool = False) -> BiLM:
    """Build a BiLM from bilm-tf's options.json and weights.hdf5, unchanged. `precision` ("float32" exact,
    "bfloat16", "int8") converts the weights for inference after loading; the file is not changed. A precision
    this CPU cannot run fast warns and falls back to float32 (raises PrecisionError if strict_precision)."""
    options = BiLMOptions.from_file(options_file)
    check_weight_file(weight_file, options)  # before allocating: the options may ask for a huge model
    bilm = BiLM(options, stateful=stateful, char_cache_size=char_cache_size)
    load_weights(bilm, weight_file)
    bilm.eval()
    bilm.set_precision(precision, strict=strict_precision)
    return bilm


def load_weights(bilm: BiLM, weight_file: PathLike) -> None:
    path = Path(weight_file)
    options = bilm.options
    shapes = expected_shapes(options)
    fin = _open(path)
    with fin, torch.no_grad():
        for key, tensor, how in _params(bilm):
            tensor.copy_(torch.from_numpy(numpy.ascontiguousarray(_file_to_tensor(_read(fin, key, shapes[key], path), how))))
        C, P = options.lstm_dim, options.projection_dim
        for d, layers in enumerate((bilm.forward_layers, bilm.backward_layers)):
            for i, layer in enumerate(layers):
                prefix = _lstm_prefix(d, i)
                w = _tf_to_ours(_read(fin, f"{prefix}/W_0", shapes[f"{prefix}/W_0"], path), C)
                b = _tf_to_ours(_read(fin, f"{prefix}/B", shapes[f"{prefix}/B"], path), C)
                layer.input_weight.copy_(torch.from_numpy(numpy.ascontiguousarray(w[:P])))
                layer.state_weight.copy_(torch.from_numpy(numpy.ascontiguousarray(w[P:])))
                layer.bias.copy_(torch.from_numpy(b))
                layer.proj_weight.copy_(torch.from_numpy(_read(fin, f"{prefix}/W_P_0", shapes[f"{prefix}/W_P_0"], path)))


def bilm_to_arrays(bilm: BiLM) -> Dict[str, numpy.ndarray]:
    """Every dataset of weights.hdf5, in the file's layout."""
    arrays: Dict[str, numpy.ndarray] = {}
    for key, tensor, how in _params(bilm):
        arrays[key] = _tensor_to_file(tensor.detach().float().cpu().numpy(), how)
    C = bilm.options.lstm_dim
    for d, layers in enumerate((bilm.forward_layers, bilm.backward_layers)):
        for i, layer in enumerate(layers):
            prefix = _lstm_prefix(d, i)
            w = torch.cat([layer.input_weight, layer.state_weight]).detach().float().cpu().numpy()
            b = layer.bias.detach().float().cpu().numpy()
            arrays[f"{prefix}/W_0"] = _ours_to_tf(w, C)
            arrays[f"{prefix}/B"] = _ours_to_tf(b, C)
            arrays[f"{prefix}/W_P_0"] = layer.proj_weight.detach().float().cpu().numpy()
    return arrays


def save_bilm(bilm: BiLM, directory: PathLike) -> Path:
    """Write directory/options.json + directory/weights.hdf5; each file is replaced atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = bilm_to_arrays(bilm)
    atomic_write(directory / "weights.hdf5", lambda tmp: _write_hdf5(tmp, arrays))
    text = json.dumps(bilm.options.to_dict(), indent=2)
    atomic_write(directory / "options.json", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))
    return directory


def _write_hdf5(path: str, arrays: Dict[str, numpy.ndarray]) -> None:
    with h5py.File(path, "w") as fout:
        for key, array in arrays.items():
            fout.create_dataset(key, data=numpy.ascontiguousarray(array, dtype=numpy.float32))


__all__ = ["load_bilm", "save_bilm", "load_weights", "check_weight_file", "bilm_to_arrays", "expected_shapes", "WeightFileError", "OptionsError"]
