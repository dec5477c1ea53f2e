"""Activation quantizers against torchao's primitives and torch's per-tensor dynamic quantization."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import oracle.conventions as conventions

torch = pytest.importorskip("torch", reason="torch is the upstream reference")

_TORCH_DT = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _x(seed: int, dtype: str, m: int = 16, k: int = 96) -> np.ndarray:
    """Activations exactly representable in `dtype`, so both sides start from the same values."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 30, (m, 1))).astype(np.float32)
    x[0] = 0.0
    x[1] = np.abs(x[1])
    x[2] = -np.abs(x[2])
    return torch.from_numpy(x).to(getattr(torch, _TORCH_DT[dtype])).float().numpy()


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torchao_da8w4_asym(dtype: str, seed: int) -> None:
    qp = pytest.importorskip("torchao.quantization.quant_primitives", reason="torchao not installed")
    conv = conventions.get(f"act.torchao.da8w4.asym.{dtype}")
    x = _x(seed, dtype)
    t = torch.from_numpy(x).to(getattr(torch, _TORCH_DT[dtype]))
    bs = (1, x.shape[1])
    s, zp = qp.choose_qparams_affine(t, qp.MappingType.ASYMMETRIC, bs, torch.uint8, quant_min=0, quant_max=255,
                                     eps=torch.finfo(torch.float32).eps, scale_dtype=torch.float32,
                                     zero_point_dtype=torch.int32)
    q = qp.quantize_affine(t, bs, s, zp, torch.uint8, quant_min=0, quant_max=255)
    ours = conv.quantize(x)
    assert np.array_equal(ours.scales.view(np.uint32), s.reshape(ours.scales.shape).numpy().view(np.uint32))
    assert np.array_equal(ours.zeros, zp.reshape(ours.zeros.shape).numpy())
    assert np.array_equal(ours.codes, q.numpy().astype(np.int32))


@pytest.mark.parametrize("seed", [0, 1])
def test_torchao_da8w4_sym(seed: int) -> None:
    qp = pytest.importorskip("torchao.quantization.quant_primitives", reason="torchao not installed")
    conv = conventions.get("act.torchao.da8w4.sym")
    x = _x(seed, "fp32")
    t = torch.from_numpy(x)
    bs = (1, x.shape[1])
    s, zp = qp.choose_qparams_affine(t, qp.MappingType.SYMMETRIC, bs, torch.int8, quant_min=-127, quant_max=127,
                                     eps=torch.finfo(torch.float32).eps, scale_dtype=torch.float32,
                                     zero_point_dtype=torch.int8)
    q = qp.quantize_affine(t, bs, s, zp, torch.int8, quant_min=-127, quant_max=127)
    ours = conv.quantize(x)
    assert np.array_equal(ours.scales[:, 0], s.reshape(-1).numpy())
    assert np.all(zp.numpy() == 0)
    assert np.array_equal(ours.codes, q.numpy().astype(np.int32))


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
    with warnings.catch_warnings():  # quantized tensor creation is deprecated upstream; the op still runs
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), getattr(torch, dtype), reduce_range)
    assert ours.scales[0, 0] == np.float32(q.q_scale())
    assert ours.zeros[0, 0] == q.q_zero_point()
    assert np.array_equal(ours.codes, q.int_repr().numpy().astype(np.int32))
    if dtype == "quint8":  # the qparams the dynamic linear path asks for come from the same function
        scale, zp = torch._choose_qparams_per_tensor(torch.from_numpy(x), reduce_range)
        assert (np.float32(scale), zp) == (ours.scales[0, 0], ours.zeros[0, 0])
    assert np.array_equal(conv.dequantize(ours).view(np.uint32), q.dequantize().numpy().view(np.uint32))
