"""Inference precisions: float32 stays exact, bfloat16 and int8 stay close, unsupported ones say so."""
import warnings

import numpy
import pytest
import torch

from spacy_elmo import PRECISIONS, PrecisionError, load_bilm
from spacy_elmo.bilm import precision as precision_module
from tests.bilm.test_bilm import SENTENCES

# Fidelity to float32 on the bilm-tf fixture model, per layer (mean cosine over tokens, max |diff|).
TOLERANCES = {"bfloat16": (0.999, 0.1), "int8": (0.995, 0.3)}


def _load(fixtures, precision, **kwargs):
    return load_bilm(fixtures / "options.json", fixtures / "lm_weights.hdf5", precision=precision, **kwargs)


def _mean_cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    dots = (a * b).sum(-1)
    norms = numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1)
    return float((dots / numpy.maximum(norms, 1e-12)).mean())


def test_float32_is_the_exact_default_path(bilm_tf_fixtures):
    default = _load(bilm_tf_fixtures, "float32").embed_sentences(SENTENCES)
    plain = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5").embed_sentences(SENTENCES)
    for a, b in zip(default, plain):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_low_precision_is_close_to_float32_per_layer(bilm_tf_fixtures, precision):
    if precision_module.unsupported_reason(precision, torch.device("cpu")):
        pytest.skip(f"{precision} not supported on this CPU")
    # 18 rows in one batch: enough for the low-precision GEMMs (few-row products may stay float32 on CPU)
    sentences = SENTENCES * 3
    exact = _load(bilm_tf_fixtures, "float32").embed_sentences(sentences)
    bilm = _load(bilm_tf_fixtures, precision, strict_precision=True)
    assert bilm.precision == precision
    got = bilm.embed_sentences(sentences)
    min_cosine, max_diff = TOLERANCES[precision]
    for a, b in zip(exact, got):
        assert b.dtype == numpy.float32 and b.shape == a.shape
        if a.shape[1] == 0:
            continue
        assert not numpy.array_equal(a[1:], b[1:]), "the low precision path did not run"
        for layer in range(a.shape[0]):
            assert _mean_cosine(a[layer], b[layer]) >= min_cosine
            assert numpy.abs(a[layer] - b[layer]).max() <= max_diff


def test_unknown_precision_names_the_choices(bilm_tf_fixtures):
    with pytest.raises(PrecisionError, match="float32, bfloat16, int8"):
        _load(bilm_tf_fixtures, "fp8")


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_unsupported_cpu_warns_once_and_runs_float32_or_raises_when_strict(bilm_tf_fixtures, monkeypatch, precision):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset())
    precision_module._warn_once.cache_clear()
    with pytest.warns(RuntimeWarning, match="(AVX512_BF16|AVX2)"):
        bilm = _load(bilm_tf_fixtures, precision)
    assert bilm.precision == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: a second load stays quiet
        _load(bilm_tf_fixtures, precision)
    with pytest.raises(PrecisionError, match="float32"):
        _load(bilm_tf_fixtures, precision, strict_precision=True)


def test_int8_on_cuda_is_refused_with_a_clear_reason():
    reason = precision_module.unsupported_reason("int8", torch.device("cuda"))
    assert reason and "CPU-only" in reason and "bfloat16" in reason


def test_every_precision_is_listed():
    assert PRECISIONS == ("float32", "bfloat16", "int8")


def test_int8_runs_on_avx2_alone_and_bfloat16_needs_its_own_instructions(monkeypatch):
    """fbgemm's int8 GEMM is several times float32's on AVX2 without VNNI (BENCHMARKS.md), so AVX2 suffices;
    bfloat16 without AVX512_BF16/AMX would be emulated."""
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    cpu = torch.device("cpu")
    if precision_module.int8_kernels_available():
        assert precision_module.unsupported_reason("int8", cpu) is None
    assert "AVX512_BF16" in precision_module.unsupported_reason("bfloat16", cpu)
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert precision_module.unsupported_reason("bfloat16", cpu) is None


def test_the_environment_switch_replaces_detection(monkeypatch):
    env = precision_module.CPU_FEATURES_ENV
    try:
        monkeypatch.setenv(env, "none")
        precision_module.cpu_flags.cache_clear()
        assert precision_module.cpu_flags() == frozenset()
        assert precision_module.unsupported_reason("int8", torch.device("cpu"))
        monkeypatch.setenv(env, "AVX2, avx512_bf16")
        precision_module.cpu_flags.cache_clear()
        assert precision_module.cpu_flags() == {"avx2", "avx512_bf16"}
        monkeypatch.setenv(env, "avx2,sse9")
        precision_module.cpu_flags.cache_clear()
        with pytest.raises(PrecisionError, match=f"{env}=.*sse9.*'none'"):
            precision_module.cpu_flags()
        monkeypatch.delenv(env)
        precision_module.cpu_flags.cache_clear()
        # detection beyond Linux: PyTorch's own cpuinfo is part of what is detected
        assert ("avx2" in precision_module.cpu_flags()) == bool(torch.cpu.get_capabilities().get("avx2"))
    finally:
        precision_module.cpu_flags.cache_clear()


def test_strict_load_honours_the_switch(bilm_tf_fixtures, cpu_features):
    """Both paths on every machine: with no CPU features int8 is refused when strict, else it loads as int8
    wherever this CPU has AVX2."""
    cpu = torch.device("cpu")
    if precision_module.unsupported_reason("int8", cpu):
        with pytest.raises(PrecisionError, match="Use precision='float32'"):
            _load(bilm_tf_fixtures, "int8", strict_precision=True)
    else:
        assert cpu_features == "detected"
        assert _load(bilm_tf_fixtures, "int8", strict_precision=True).precision == "int8"
