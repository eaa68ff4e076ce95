"""Inference precision of the biLM: float32 (exact), bfloat16, int8.

The weight file stays bilm-tf's float32; a lower precision is a conversion made at load, used only by the
no-grad inference path. What each precision does:
- "float32": every GEMM in float32, bit-identical to the exact path (the default).
- "bfloat16": the LSTM and char-encoder GEMMs take bfloat16 operands (float32 accumulation inside the GEMM);
  gate arithmetic, the cell state and every output stay float32, so rounding does not build up over time.
- "int8": the LSTM GEMMs use int8 weights quantized per output channel with activations quantized per call
  (PyTorch's dynamic quantized linear, fbgemm/x86 backend); the char encoder runs as for bfloat16 where the
  CPU supports it, else in float32.
A precision that the device cannot run fast is not silently slow: `resolve_precision` warns once naming the
missing CPU feature and falls back to float32, or raises when the caller insists (strict=True).
"""
import functools
import os
import warnings
from typing import FrozenSet, Optional

import torch

PRECISIONS = ("float32", "bfloat16", "int8")


class PrecisionError(ValueError):
    pass


# Setting this variable replaces feature detection: a comma-separated list of the flag names below, or "none".
# CI sets it to "none" to run the float32 fallbacks on any machine; a user can pin what a fleet of machines shares.
CPU_FEATURES_ENV = "SPACY_ELMO_CPU_FEATURES"
# The CPU features that decide a precision, under the names Linux's /proc/cpuinfo and torch.cpu use.
PRECISION_FEATURES = frozenset({"avx2", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8"})


def _detected_cpu_flags() -> FrozenSet[str]:
    """What this CPU has, from PyTorch's own cpuinfo (every OS), joined with Linux's /proc/cpuinfo."""
    flags = set()
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        try:
            flags |= {name for name, present in get_capabilities().items() if present is True}
        except Exception:  # a PyTorch without cpuinfo support: /proc/cpuinfo alone
            pass
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags |= set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return frozenset(flags)


def _flags_from_env(value: str) -> FrozenSet[str]:
    names = {name.strip().lower() for name in value.split(",") if name.strip()}
    if names <= {"none"}:
        return frozenset()
    unknown = names - PRECISION_FEATURES
    if unknown:
        raise PrecisionError(
            f"{CPU_FEATURES_ENV}={value!r} names unknown CPU features {', '.join(sorted(unknown))}: use 'none' or a "
            f"comma-separated list of {', '.join(sorted(PRECISION_FEATURES))}."
        )
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags the precision choice may rely on: detected, or as SPACY_ELMO_CPU_FEATURES says."""
    override = os.environ.get(CPU_FEATURES_ENV)
    if override is not None:
        return _flags_from_env(override)
    return _detected_cpu_flags()


def int8_kernels_available() -> bool:
    """PyTorch's fbgemm int8 GEMM (quantized::linear_dynamic) is present in this build."""
    engines = set(torch.backends.quantized.supported_engines)
    has_ops = hasattr(torch, "quantize_per_channel") and hasattr(torch.ops.quantized, "linear_dynamic")
    return bool({"fbgemm", "x86"} & engines) and has_ops


def unsupported_reason(precision: str, device: torch.device) -> Optional[str]:
    """None when `precision` runs natively on `device`, else why not (naming the missing feature)."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "float32":
        return None
    if device.type == "cuda":
        if precision == "int8":
            return "int8 inference is CPU-only here (PyTorch's fbgemm/x86 dynamic quantization); use bfloat16 on CUDA"
        if not torch.cuda.is_bf16_supported():
            return "this GPU has no native bfloat16 (compute capability 8.0 or newer is needed)"
        return None
    if device.type != "cpu":
        return f"{precision} is implemented for CPU and CUDA devices, not {device.type}"
    flags = cpu_flags()
    if precision == "bfloat16" and not flags & {"avx512_bf16", "amx_bf16"}:
        return "this CPU lacks AVX512_BF16 and AMX_BF16, so bfloat16 GEMMs would be emulated (slower than float32)"
    if precision == "int8":
        if not int8_kernels_available():
            return "this PyTorch build has no fbgemm/x86 int8 kernels (quantized::linear_dynamic)"
        # fbgemm's int8 GEMM beats float32 from AVX2 on (measured in BENCHMARKS.md); below it, it runs a slow
        # reference loop. VNNI and AMX only make it faster still.
        if not flags & {"avx2", "avx512_vnni", "avx_vnni", "amx_int8"}:
            return "this CPU lacks AVX2, without which PyTorch's int8 GEMM is slower than float32"
    return None


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def resolve_precision(precision: str, device: torch.device, strict: bool = False) -> str:
    """The precision to run: `precision` where the device supports it, else float32 with one warning
    (or PrecisionError when strict)."""
    reason = unsupported_reason(precision, device)
    if reason is None:
        return precision
    message = f"precision {precision!r} is not supported: {reason}."
    if strict:
        raise PrecisionError(message + " Use precision='float32' (exact) instead.")
    _warn_once(message + " Running in float32 instead.")
    return "float32"


# ---------------------------------------------------------------- GEMMs in a chosen precision
class LinearMap:
    """x (n, K) float32 -> x @ W (n, N), results written into float32 tensors. float32 here: the exact path."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight  # (K, N)

    def write_with_bias(self, bias: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
        torch.addmm(bias, x, self.weight, out=out)

    def write(self, x: torch.Tensor, out: torch.Tensor) -> None:
        torch.mm(x, self.weight, out=out)

    def add(self, x: torch.Tensor, out: torch.Tensor) -> None:
        out.addmm_(x, self.weight)


class _ConvertedMap(LinearMap):
    """Shared shape of the low-precision maps: compute x @ W in the low precision, land in float32."""

    def product(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def write_with_bias(self, bias: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
        torch.add(bias, self.product(x), out=out)

    def write(self, x: torch.Tensor, out: torch.Tensor) -> None:
        out.copy_(self.product(x))

    def add(self, x: torch.Tensor, out: torch.Tensor) -> None:
        out.add_(self.product(x))


# Below this many rows the CPU's bf16 GEMM is slower than float32 (bench: 512 x 16384 at 1 row 1.14 ms against
# 0.84, equal at 8, 3.5x faster at 32): such products run in float32 with the original weights.
BF16_MIN_ROWS_CPU = 8


class BFloat16Map(_ConvertedMap):
    def __init__(self, weight: torch.Tensor) -> None:
        self.exact = weight  # float32, for the few-row products where bf16 does not pay on CPU
        self.min_rows = BF16_MIN_ROWS_CPU if weight.device.type == "cpu" else 0
        super().__init__(weight.detach().to(torch.bfloat16).contiguous())

    def product(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < self.min_rows:
            return torch.mm(x, self.exact)
        return torch.mm(x.to(torch.bfloat16), self.weight)


class Int8Map(_ConvertedMap):
    """int8 weights, one scale per output column (symmetric); activations quantized per call.

    Why fbgemm's quantized::linear_dynamic: it is the int8 GEMM in PyTorch that is fast on a CPU (4-5x float32
    on AVX2 alone, BENCHMARKS.md); torch._int_mm and torch._weight_int8pack_mm run reference loops on CPU, and
    torchao's CPU int8 path needs torch.compile. Its weights are prepacked from a quantized tensor, an API
    PyTorch marks deprecated: that is confined to this constructor, and `int8_kernels_available` turns int8
    into the announced float32 fallback in a PyTorch that no longer has it.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        rows = weight.detach().float().t().contiguous()  # (N, K): one output channel per row
        scales = (rows.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zero_points = torch.zeros(rows.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # The deprecation warning of the quantized-tensor API: see the class docstring.
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_channel(rows, scales, zero_points, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(quantized, None)
        # Without VNNI, fbgemm sums pairs of u8*s8 products in int16 (vpmaddubsw), which saturates on
        # full-range activations (max error ~6x larger on this kernel's shapes); 7-bit activations cannot.
        self.reduce_range = not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}
        super().__init__(weight)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x.contiguous(), self.packed, self.reduce_range)


def make_map(precision: str, weight: torch.Tensor) -> LinearMap:
    if precision == "bfloat16":
        return BFloat16Map(weight)
    if precision == "int8":
        return Int8Map(weight)
    return LinearMap(weight)


def char_encoder_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for the char CNN, highway and projection, or None for float32."""
    if precision == "bfloat16" or (precision == "int8" and unsupported_reason("bfloat16", device) is None):
        return torch.bfloat16
    return None


__all__ = ["PRECISIONS", "PrecisionError", "resolve_precision", "unsupported_reason", "make_map", "LinearMap",
           "char_encoder_dtype", "cpu_flags", "CPU_FEATURES_ENV"]
