"""Activation quantizers against torchao's primitives and torch's per-tensor dynamic quantization.
torch and torchao run in a worker process (tests/kernel_calls.py)."""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

import oracle.conventions as conventions
from tests.kernel_calls import needs, run

HERE = "tests.test_activations"
needs("torch", "torch is the upstream reference")
needs_torchao = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao not installed")

_TORCH_DT = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Worker side: x rounded to `dtype` by torch and widened back to float32."""
    import torch

    return torch.from_numpy(x).to(getattr(torch, _TORCH_DT[dtype])).float().numpy()


def torchao_affine(x: np.ndarray, dtype: str, mapping: str, target: str, qmin: int, qmax: int,
                   zero_dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker side: torchao's per-row choose_qparams_affine and quantize_affine: scale, zero point, codes."""
    import torch
    from torchao.quantization import quant_primitives as qp

    t = torch.from_numpy(x).to(getattr(torch, _TORCH_DT[dtype]))
    bs, tt = (1, x.shape[1]), getattr(torch, target)
    s, zp = qp.choose_qparams_affine(t, getattr(qp.MappingType, mapping), bs, tt, quant_min=qmin, quant_max=qmax,
                                     eps=torch.finfo(torch.float32).eps, scale_dtype=torch.float32,
                                     zero_point_dtype=getattr(torch, zero_dtype))
    q = qp.quantize_affine(t, bs, s, zp, tt, quant_min=qmin, quant_max=qmax)
    return s.numpy(), zp.numpy(), q.numpy()


def torch_per_tensor_dynamic(x: np.ndarray, dtype: str, reduce_range: bool) -> dict:
    """Worker side: torch.quantize_per_tensor_dynamic's scale, zero point, codes and dequantized
    values, and what _choose_qparams_per_tensor (the dynamic linear path's qparams) gives."""
    import torch

    with warnings.catch_warnings():  # quantized tensor creation is deprecated upstream; the op still runs
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), getattr(torch, dtype), reduce_range)
    return {"scale": q.q_scale(), "zero_point": q.q_zero_point(), "codes": q.int_repr().numpy(),
            "dequantized": q.dequantize().numpy(),
            "choose": torch._choose_qparams_per_tensor(torch.from_numpy(x), reduce_range) if dtype == "quint8" else None}


def _x(seed: int, dtype: str, m: int = 16, k: int = 96) -> np.ndarray:
    """Activations exactly representable in `dtype`, so both sides start from the same values."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 30, (m, 1))).astype(np.float32)
    x[0] = 0.0
    x[1] = np.abs(x[1])
    x[2] = -np.abs(x[2])
    return run(HERE, "round_to", x, dtype)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@needs_torchao
def test_torchao_da8w4_asym(dtype: str, seed: int) -> None:
    conv = conventions.get(f"act.torchao.da8w4.asym.{dtype}")
    x = _x(seed, dtype)
    s, zp, q = run(HERE, "torchao_affine", x, dtype, "ASYMMETRIC", "uint8", 0, 255, "int32")
    ours = conv.quantize(x)
    assert np.array_equal(ours.scales.view(np.uint32), s.reshape(ours.scales.shape).view(np.uint32))
    assert np.array_equal(ours.zeros, zp.reshape(ours.zeros.shape))
    assert np.array_equal(ours.codes, q.astype(np.int32))


@pytest.mark.parametrize("seed", [0, 1])
@needs_torchao
def test_torchao_da8w4_sym(seed: int) -> None:
    conv = conventions.get("act.torchao.da8w4.sym")
    x = _x(seed, "fp32")
    s, zp, q = run(HERE, "torchao_affine", x, "fp32", "SYMMETRIC", "int8", -127, 127, "int8")
    ours = conv.quantize(x)
    assert np.array_equal(ours.scales[:, 0], s.reshape(-1))
    assert np.all(zp == 0)
    assert np.array_equal(ours.codes, q.astype(np.int32))


def _per_tensor_inputs(seed: int) -> np.ndarray:
    """Random activations plus the cases ChooseQuantizationParams branches on."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((7, 39)) * rng.uniform(0.01, 30)).astype(np.float32)  # 273: not a multiple of 8
    kind = seed % 5
    if kind == 1:
        x = np.abs(x)  # min = 0: the zero point sits at qmin
    elif kind == 2:
        x = -np.abs(x)  # max = 0
    elif kind == 3:
        x *= np.float32(1e-4)  # scale below fbgemm's 6.1e-5 floor
    elif kind == 4:
        x[:] = 0.0  # scale 0 becomes 0.1
    return x


@pytest.mark.parametrize("dtype", ["quint8", "qint8"])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("seed", range(10))
def test_torch_per_tensor_dynamic(dtype: str, reduce_range: bool, seed: int) -> None:
    conv = conventions.get(f"act.torch.per_tensor.{dtype}" + (".reduce_range" if reduce_range else ""))
    x = _per_tensor_inputs(seed)
    ours = conv.quantize(x)
    if seed % 5 == 0:  # values on half steps of the scale and one ulp either side: the rounding is visible
        s = np.float64(ours.scales[0, 0])
        h = ((np.arange(x.shape[1]) - 20 + 0.5) * s).astype(np.float32)
        x[0], x[1], x[2] = h, np.nextafter(h, np.float32(np.inf)), np.nextafter(h, np.float32(-np.inf))
        ours = conv.quantize(x)
    q = run(HERE, "torch_per_tensor_dynamic", x, dtype, reduce_range)
    assert ours.scales[0, 0] == np.float32(q["scale"])
    assert ours.zeros[0, 0] == q["zero_point"]
    assert np.array_equal(ours.codes, q["codes"].astype(np.int32))
    if dtype == "quint8":  # the qparams the dynamic linear path asks for come from the same function
        scale, zp = q["choose"]
        assert (np.float32(scale), zp) == (ours.scales[0, 0], ours.zeros[0, 0])
    assert np.array_equal(conv.dequantize(ours).view(np.uint32), q["dequantized"].view(np.uint32))


@pytest.mark.parametrize("name, rule", [("act.vllm.per_token_int8.cuda", "half_even"),
                                        ("act.sglang.per_token_int8.triton", "half_away")])
def test_per_token_int8_ties(name: str, rule: str) -> None:
    """absmax 127 makes the multiplier 127/absmax exactly 1, so x = j + 0.5 sits on every tie: vLLM's
    cvt.rni rounds it to even, sglang's libdevice round away from zero. The codes here come from
    Python's own rounding of the exact halves, not from the oracle."""
    halves = np.arange(-126, 126) + 0.5
    x = np.concatenate([[127.0], halves]).astype(np.float32)[None, :]
    if rule == "half_even":
        want = [round(v) for v in halves]  # Python rounds exact halves to even
    else:
        want = [int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in halves]
    q = conventions.get(name).quantize(x)
    assert q.codes[0, 0] == 127 and q.codes[0, 1:].tolist() == want
