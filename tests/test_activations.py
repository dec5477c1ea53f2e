"""Activation quantizers against torchao's primitives and torch's per-tensor dynamic quantization."""
from __future__ import annotations

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


@pytest.mark.xfail(strict=False, reason="known gap (some inputs agree, seed 0 does not): fbgemm's ChooseQuantizationParams computes the scale in "
                   "double (q_scale() is a double); the convention computes it in float32")
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_torch_per_tensor_dynamic_quint8(seed: int) -> None:
    conv = conventions.get("act.torch.per_tensor.quint8")
    x = _x(seed, "fp32")
    if seed == 3:
        x = np.abs(x)  # all non-negative: the zero point sits at 0
    q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), torch.quint8, False)
    ours = conv.quantize(x)
    assert ours.scales[0, 0] == np.float32(q.q_scale())
    assert ours.zeros[0, 0] == q.q_zero_point()
    assert np.array_equal(ours.codes, q.int_repr().numpy().astype(np.int32))
