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
import warnings
from typing import FrozenSet, Optional

import torch

PRECISIONS = ("float32", "bfloat16", "int8")


class PrecisionError(ValueError):
    pass


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags the kernel reports (Linux); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


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
        if not {"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines):
            return "this PyTorch build has no fbgemm/x86 quantized engine"
        if not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
            return "this CPU lacks AVX512_VNNI, AVX_VNNI and AMX_INT8, so int8 GEMMs gain little over float32"
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
    """int8 weights, one scale per output column (symmetric); activations quantized per call."""

    def __init__(self, weight: torch.Tensor) -> None:
        rows = weight.detach().float().t().contiguous()  # (N, K): one output channel per row
        scales = (rows.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zero_points = torch.zeros(rows.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # PyTorch marks the quantized-tensor API deprecated; it is still the fastest int8 GEMM on CPU.
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_channel(rows, scales, zero_points, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(quantized, None)
        super().__init__(weight)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x.contiguous(), self.packed)


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
           "char_encoder_dtype", "cpu_flags"]
