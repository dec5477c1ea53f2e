"""Conventions against torch's ops and torchao's primitives: codes, scales and zeros byte for byte.
torch and torchao run in a worker process (tests/kernel_calls.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import oracle.conventions as conventions
from tests.kernel_calls import int4pack_identity, needs, needs_module, run, to_numpy

HERE = "tests.test_conventions_torch"
KC = "tests.kernel_calls"
needs("torch", "torch is the upstream reference for these conventions")


def _w(seed: int, n: int = 8, k: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32)
    w[0, :] = 0.0  # an all-zero row: eps paths
    w[1, 5] = -w[1].__abs__().max() * 3  # a dominant negative value
    return w


def _primitives() -> None:
    needs_module("torchao.quantization.quant_primitives", "torchao not installed")


def _test_helpers() -> None:
    needs_module("torch.testing._internal.common_quantization", "torch test helpers absent")


def torchao_affine(w: np.ndarray, gs: int, mapping: str, target: str, qmin: int, qmax: int,
                   eps: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Worker side: torchao's choose_qparams_affine, quantize_affine and dequantize_affine on
    groups of `gs` along each row: scale, zero point, codes, dequantized values."""
    import torch
    from torchao.quantization import quant_primitives as qp

    t, bs, tt = torch.from_numpy(w), (1, gs), getattr(torch, target)
    scale, zp = qp.choose_qparams_affine(t, getattr(qp.MappingType, mapping), bs, tt, quant_min=qmin, quant_max=qmax,
                                         eps=eps, scale_dtype=torch.float32, zero_point_dtype=torch.int32)
    q = qp.quantize_affine(t, bs, scale, zp, tt, quant_min=qmin, quant_max=qmax)
    deq = qp.dequantize_affine(q, bs, scale, zp, tt, quant_min=qmin, quant_max=qmax)
    return scale.numpy(), zp.numpy(), q.numpy(), deq.numpy()


def torchao_tinygemm(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Worker side: torchao's tinygemm choose_qparams / quantize / dequantize: scale, zero, codes, dequantized."""
    import torch
    from torchao.quantization import quant_primitives as qp

    t, bs = torch.from_numpy(w), (1, group)
    scale, zero = qp._choose_qparams_affine_tinygemm(t, qp.MappingType.ASYMMETRIC, bs, torch.int32, 0, 15, 1e-6,
                                                     None, torch.float32)
    q = qp._quantize_affine_tinygemm(t, bs, scale, zero, torch.int32, 0, 15)
    deq = qp._dequantize_affine_tinygemm(q, bs, scale, zero, torch.int32, 0, 15)
    return scale.numpy(), zero.numpy(), q.numpy(), deq.numpy()


def torch_test_quantizer(name: str, w: np.ndarray, *args, transpose: bool = False, dtype: str = "") -> tuple:
    """Worker side: torch.testing._internal.common_quantization.<name> on `w` (its transpose view
    if `transpose`), then `args` (and `torch.<dtype>` if named); tensors come back as arrays."""
    import torch
    from torch.testing._internal import common_quantization as cq

    t = torch.from_numpy(w)
    out = getattr(cq, name)(t.t() if transpose else t, *args, *([getattr(torch, dtype)] if dtype else []))
    return tuple(to_numpy(o) if isinstance(o, torch.Tensor) else o for o in out)


_AFFINE = {  # convention -> (mapping, target dtype, qmin, qmax, eps, zp dtype)
    "torchao.int8.sym": ("SYMMETRIC", "int8", -128, 127, 1.1920928955078125e-07),
    "torchao.int8.asym": ("ASYMMETRIC", "int8", -128, 127, 1.1920928955078125e-07),
    "torchao.int4.sym": ("SYMMETRIC", "int8", -8, 7, None),
    "torchao.int4.asym": ("ASYMMETRIC", "int8", -8, 7, None),
    "torchao.da8w4.pr2128": ("SYMMETRIC", "uint8", 0, 15, 1.1920928955078125e-07),
    "torchao.da8w4.opaque": ("ASYMMETRIC", "uint8", 0, 15, 1e-6),
}


@pytest.mark.parametrize("name", sorted(_AFFINE))
@pytest.mark.parametrize("seed", [0, 1])
def test_torchao_affine(name: str, seed: int) -> None:
    _primitives()
    mapping, target, qmin, qmax, eps = _AFFINE[name]
    conv = conventions.get(name)
    w = _w(seed)
    gs = w.shape[1] if conv.group_size == -1 else conv.group_size
    scale, zp, q, deq = run(HERE, "torchao_affine", w, gs, mapping, target, qmin, qmax, eps)
    ours = conv.quantize(w)
    assert np.array_equal(ours.codes, q.astype(np.int32))
    assert np.array_equal(ours.scales.view(np.uint32), scale.reshape(ours.scales.shape).view(np.uint32))
    zp_np = zp.reshape(ours.scales.shape).astype(np.int32)
    if ours.zeros is None:
        assert np.all(zp_np == conv.zero_offset)
    else:
        assert np.array_equal(ours.zeros, zp_np)
    assert np.array_equal(conv.dequantize(ours).view(np.uint32), deq.view(np.uint32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tinygemm_torchao_quantizer_and_kernel(seed: int) -> None:
    _primitives()
    conv = conventions.get("tinygemm.torchao")
    w = _w(seed, n=16, k=128)
    scale, zero, q, deq = run(HERE, "torchao_tinygemm", w, conv.group_size)
    ours = conv.quantize(w)
    assert np.array_equal(ours.codes, q)
    assert np.array_equal(ours.scales, scale.reshape(ours.scales.shape))
    assert np.array_equal(ours.zeros, zero.reshape(ours.scales.shape))
    # torchao's Python dequantizer rounds twice; the convention (and the kernel) fuse: tests/test_tinygemm_bf16.py
    two = ((ours.codes - 8).astype(np.float32) * np.repeat(ours.scales, conv.group_size, 1)).astype(np.float32)
    assert np.array_equal(two + np.repeat(ours.zeros, conv.group_size, 1), deq)
    # the kernel computes with our packed inputs what x @ dequantized.T gives: identity rows pick weights
    p = conv.pack(ours)
    got = int4pack_identity(p["weight"], p["scales_and_zeros"], conv.group_size)
    assert np.all((got == conv.dequantize(ours)) | (got == two + np.repeat(ours.zeros, conv.group_size, 1))), \
        "kernel dequant is neither fmaf(q-8, s, z) nor (q-8)*s+z rounded twice"


@pytest.mark.parametrize("seed", [0, 1])
def test_tinygemm_torch_test_quantizer(seed: int) -> None:
    _test_helpers()
    conv = conventions.get("tinygemm.torch_test")
    w = _w(seed, n=16, k=128)
    q, sz = run(HERE, "torch_test_quantizer", "_group_quantize_tensor", w, 4, conv.group_size,
                transpose=True)  # takes [K, N]
    ours = conv.quantize(w)
    assert np.array_equal(ours.codes, q)
    assert np.array_equal(conv.pack(ours)["scales_and_zeros"], sz)


@pytest.mark.parametrize("seed", [0, 1])
def test_int8pack_quantizer_and_kernel(seed: int) -> None:
    _test_helpers()
    conv = conventions.get("torch.int8pack")
    w = _w(seed, n=16, k=64)
    q, s, _ = run(HERE, "torch_test_quantizer", "_dynamically_quantize_per_channel", w, -128, 127, dtype="int8")
    ours = conv.quantize(w)
    assert np.array_equal(conv.pack(ours)["weight"], q)
    assert np.array_equal(ours.scales[:, 0], s)
    eye = np.eye(w.shape[1], dtype=np.float32)
    out = run(KC, "torch_op", "_weight_int8pack_mm", eye, conv.pack(ours)["weight"], ours.scales[:, 0])
    assert np.array_equal(out.T, conv.dequantize(ours))


@pytest.mark.parametrize("seed", [0, 1])
def test_dyn_quant_4bit_weights(seed: int) -> None:
    _test_helpers()
    conv = conventions.get("torch.dyn_quant_4bit")
    w = _w(seed, n=16, k=128)
    packed, scales = run(HERE, "torch_test_quantizer", "_group_quantize_tensor_symmetric", w, 4, conv.group_size,
                         transpose=True)  # takes [K, N]
    ours = conv.quantize(w)
    assert np.array_equal(conv.pack(ours)["weight"], packed.reshape(w.shape[0], -1))  # rows of one group each
    assert np.array_equal(ours.scales.reshape(-1), scales.reshape(-1))


def test_partial_last_group_matches_torchao() -> None:
    _primitives()
    conv = dataclasses.replace(conventions.get("torchao.da8w4.opaque"), group_size=16)
    w = _w(3, n=4, k=40)  # 16 + 16 + 8
    ours = conv.quantize(w)
    for g, (s, e) in enumerate(conv.groups(w.shape[1])):
        scale, _, q, _ = run(HERE, "torchao_affine", np.ascontiguousarray(w[:, s:e]), e - s, "ASYMMETRIC", "uint8",
                             0, 15, 1e-6)
        assert np.array_equal(ours.codes[:, s:e], q.astype(np.int32))
        assert np.array_equal(ours.scales[:, g], scale.reshape(-1))


def _nvfp4() -> None:
    needs_module("torchao.prototype.mx_formats.nvfp4_tensor", "torchao NVFP4 absent")


def torchao_nvfp4(w: np.ndarray, two_level: bool) -> dict:
    """Worker side: torchao's nvfp4_quantize (with the per-tensor scale from the amax if `two_level`)
    and NVFP4Tensor.dequantize: the packed bytes, the scale bytes, the tensor scale, float32 values."""
    import torch
    from torchao.prototype.mx_formats import nvfp4_tensor as m

    t = torch.from_numpy(w)
    pts = m.per_tensor_amax_to_scale(t.abs().max()) if two_level else None
    s8, data = m.nvfp4_quantize(t, 16, pts)
    nv = m.NVFP4Tensor(data, s8, 16, torch.float32, per_tensor_scale=pts)
    return {"weight": data.numpy().view(np.uint8), "scales": s8.view(torch.uint8).numpy(),
            "tensor_scale": None if pts is None else pts.reshape(1).numpy(),
            "dequantized": nv.dequantize(torch.float32).numpy()}


def _nvfp4_input(seed: int, times: float = 1.0) -> np.ndarray:
    """Weights with zero blocks, tiny blocks (scale clamp at 2^-6) and e2m1 half steps; `times`
    scales the whole tensor (0: all zero; 1e-43: tensor scale 0; 1e-37: 1/tensor scale = inf)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((8, 128)) * rng.uniform(0.01, 50, (8, 1))).astype(np.float32)
    w[0, :16] = 0.0
    w[1, 16:32] *= np.float32(1e-6)
    w[2, :16] = np.float32(0.25) * np.arange(-8, 8, dtype=np.float32)  # multiples of half an e2m1 step
    w[2, 15] = 6.0
    w[3, ::5] = 0.0
    return (w * np.float32(times)).astype(np.float32)


@pytest.mark.parametrize("two_level", [True, False])
@pytest.mark.parametrize("seed,times", [(0, 1.0), (1, 1.0), (2, 1.0), (0, 0.0), (1, 1e-43), (2, 1e-37)])
def test_nvfp4_against_torchao(two_level: bool, seed: int, times: float) -> None:
    """Every byte, the NaN corners included: an all-zero tensor packs to 0xCC with 0xFF scales
    (the bit-level encoder on torch's NaN), 0 * inf elements to 0xB (oracle/conventions/nvfp4.py)."""
    _nvfp4()
    conv = conventions.get("nvfp4.two_level" if two_level else "nvfp4.one_level")
    w = _nvfp4_input(seed, times)
    ref = run(HERE, "torchao_nvfp4", w, two_level)
    ours = conv.quantize(w)
    packed = conv.pack(ours)
    assert np.array_equal(packed["weight"], ref["weight"])
    assert np.array_equal(packed["scales"], ref["scales"])
    if two_level:
        assert packed["tensor_scale"].view(np.uint32)[0] == ref["tensor_scale"].view(np.uint32)[0]
    if two_level and times == 0.0:
        assert np.all(packed["weight"] == 0xCC) and np.all(packed["scales"] == 0xFF)
    got = conv.dequantize(conv.unpack({**packed, "k": w.shape[1]}, w.shape[1]))
    want = ref["dequantized"]
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(got), np.isnan(want))  # NaN payloads are not part of the convention
    assert np.array_equal(got[finite].view(np.uint32), want[finite].view(np.uint32))
