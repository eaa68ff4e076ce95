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
from typing import Dict, Iterator, Optional, Tuple, Union, cast

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


# Every published biLM (original / 5.5B 93.6M, medium 28M, small 13.6M parameters) fits ten times over; the
# options are checked against this before anything of their size is read or allocated.
MAX_PARAMETERS = 1_000_000_000

# Filters whose decoders ship with HDF5 / h5py (deflate, shuffle, fletcher32, lzf). Any other would run a
# third-party plugin on untrusted data; bilm-tf and save_bilm write no filter at all.
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "deflate", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                   h5py.h5z.FILTER_FLETCHER32: "fletcher32", 32000: "lzf"}
FLOAT_SIZES = (2, 4, 8)

PLAIN = "weights must be plain datasets stored in the file itself"


def _refuse(path: Path, key: str, problem: str) -> WeightFileError:
    return WeightFileError(f"{path}: dataset '{key}' {problem}")


def _plain_node(fin: h5py.File, key: str, path: Path) -> object:
    """fin[key], following hard links only: a soft or external link anywhere on the way (a group too) is
    refused, so nothing outside the file, nor another name inside it, can stand in for a weight."""
    node: object = fin
    parts = key.split("/")
    for depth, name in enumerate(parts):
        here = "/".join(parts[: depth + 1])
        if not isinstance(node, h5py.Group):
            return None
        link = node.get(name, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise _refuse(path, key, f"is reached through '{here}', an external link to {link.filename}:{link.path}; {PLAIN}.")
        if isinstance(link, h5py.SoftLink):
            raise _refuse(path, key, f"is reached through '{here}', a soft link to {link.path}; {PLAIN}.")
        if not isinstance(link, h5py.HardLink):
            raise _refuse(path, key, f"is reached through '{here}', an HDF5 {type(link).__name__}; {PLAIN}.")
        node = node[name]
    return node


def _check_storage(node: h5py.Dataset, key: str, path: Path) -> None:
    """The dataset's bytes are in this file and cover its whole shape, checked from metadata alone, so a
    small file cannot declare gigabytes it never wrote. Contiguous and compact: the stored size is exactly
    shape x itemsize (and a contiguous block ends inside the file); chunked: every chunk the shape needs is
    allocated (without filters each holds exactly a chunk's bytes; with an allowed compression filter the
    stored size cannot be compared, and MAX_PARAMETERS bounds what it can expand to)."""
    if node.is_virtual:
        raise _refuse(path, key, f"is a virtual dataset (its data lives in other files); {PLAIN}.")
    if node.external is not None:
        files = ", ".join(str(name) for name, _, _ in node.external)
        raise _refuse(path, key, f"keeps its data in an external file ({files}); {PLAIN}.")
    if node.dtype.kind != "f" or node.dtype.itemsize not in FLOAT_SIZES:
        raise _refuse(path, key, f"has dtype {node.dtype}; weights must be floating point (float16, float32 or float64).")
    expected = int(numpy.prod(node.shape, dtype=object)) * node.dtype.itemsize
    if expected == 0:
        return
    plist = node.id.get_create_plist()
    layout = plist.get_layout()
    stored = node.id.get_storage_size()
    unwritten = "was declared but never written (the file holds {stored} of its {expected} bytes); the file is incomplete or crafted."
    if layout in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
        offset = node.id.get_offset() if layout == h5py.h5d.CONTIGUOUS else 0
        if stored != expected or offset is None:
            raise _refuse(path, key, unwritten.format(stored=stored, expected=expected))
        if layout == h5py.h5d.CONTIGUOUS and offset + stored > path.stat().st_size:
            raise _refuse(path, key, f"claims bytes {offset}-{offset + stored} but the file has {path.stat().st_size}; the file is truncated or crafted.")
        return
    if layout != h5py.h5d.CHUNKED:
        raise _refuse(path, key, f"has an unknown storage layout ({layout}); {PLAIN}.")
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    refused = [f for f in filters if f not in ALLOWED_FILTERS]
    if refused:
        raise _refuse(path, key, f"is stored with HDF5 filter(s) {refused}; only {', '.join(sorted(ALLOWED_FILTERS.values()))} are read.")
    chunk = node.chunks
    needed = 1
    for size, step in zip(node.shape, chunk):
        needed *= -(-size // step)
    have = node.id.get_num_chunks()
    if have != needed:
        raise _refuse(path, key, f"was declared but never written: {have} of the {needed} chunks its shape needs are in the file; the file is incomplete or crafted.")
    chunk_bytes = int(numpy.prod(chunk, dtype=object)) * node.dtype.itemsize
    if not filters and stored != needed * chunk_bytes:
        raise _refuse(path, key, unwritten.format(stored=stored, expected=needed * chunk_bytes))


def _dataset(fin: h5py.File, key: str, shape: Tuple[int, ...], path: Path, plain: bool = True) -> h5py.Dataset:
    """fin[key], checked from the file's metadata alone: reached through hard links only, a dataset of the
    expected shape and, with `plain`, not external or virtual, floating point, and fully stored in the file."""
    try:
        node = _plain_node(fin, key, path)
    except WeightFileError:
        raise
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
    if plain:
        try:
            _check_storage(node, key, path)
        except (OSError, KeyError, RuntimeError) as err:
            raise WeightFileError(f"{path}: dataset '{key}' cannot be read ({err}); the file is corrupt or truncated.") from err
    return node


def n_parameters(options: BiLMOptions) -> int:
    """The number of weights that the options call for (the hdf5 layout's datasets)."""
    return sum(int(numpy.prod(shape, dtype=object)) for shape in expected_shapes(options).values())


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise WeightFileError(f"Weight file not found: {path}. Expected bilm-tf's weights.hdf5.")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise WeightFileError(f"{path} is not a readable HDF5 file ({err}); it may be truncated or corrupt.") from err


def check_weight_file(weight_file: PathLike, options: BiLMOptions) -> None:
    """Every dataset that the options call for is in the file with the right shape, plain and fully stored,
    and their total is within MAX_PARAMETERS. Reads only the file's metadata, so a mismatched or hostile
    options.json or weight file is refused before a model of its size is allocated."""
    path = Path(weight_file)
    shapes = expected_shapes(options)
    with _open(path) as fin:
        for key, shape in shapes.items():  # first the names and shapes: they say which options.json belongs here
            _dataset(fin, key, shape, path, plain=False)
        total = n_parameters(options)
        if total > MAX_PARAMETERS:
            raise WeightFileError(
                f"{path}: its options.json asks for {total:,} parameters, over the limit of {MAX_PARAMETERS:,} "
                "(the largest published ELMo has 93.6M); refused before anything is read or allocated."
            )
        for key, shape in shapes.items():
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


def read_extra_dataset(weight_file: PathLike, key: str) -> Optional[numpy.ndarray]:
    """A dataset beyond the biLM's own (bilm-tf's softmax/W and softmax/b), held to the same rules as the
    weights: None when the file has no such dataset, WeightFileError when it is there but not a plain, fully
    stored float dataset within MAX_PARAMETERS. The caller checks its shape."""
    path = Path(weight_file)
    with _open(path) as fin:
        try:
            node = _plain_node(fin, key, path)
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            raise WeightFileError(f"{path}: dataset '{key}' cannot be read ({err}); the file is corrupt or truncated.") from err
        if not isinstance(node, h5py.Dataset):
            return None
        if int(numpy.prod(node.shape, dtype=object)) > MAX_PARAMETERS:
            raise _refuse(path, key, f"has shape {node.shape}, over the limit of {MAX_PARAMETERS:,} values.")
        return _read(fin, key, tuple(node.shape), path)


def _params(bilm: BiLM) -> Iterator[Tuple[str, torch.Tensor, str]]:
    """(hdf5 key, our tensor, how to convert) for every weight."""
    cnn = bilm.char_cnn
    yield "char_embed", cnn.char_embed.weight, "char_embed"
    for k, conv in enumerate(cnn.convs):
        yield f"CNN/W_cnn_{k}", conv.weight, "conv"
        yield f"CNN/b_cnn_{k}", cast(torch.Tensor, conv.bias), "copy"  # built with a bias
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


__all__ = ["load_bilm", "save_bilm", "load_weights", "check_weight_file", "read_extra_dataset", "n_parameters", "MAX_PARAMETERS", "bilm_to_arrays", "expected_shapes", "WeightFileError", "OptionsError"]
