"""MX conventions against their upstream quantizers at the corners, byte for byte.

(The NVFP4 corners, all-zero tensors and tensor scales of 0 or with an infinite reciprocal, are
in tests/test_conventions_torch.py::test_nvfp4_against_torchao.)
mx.*.torchao: torchao's to_mx, where blocks with scale byte 0 are divided by 2^-126.
mx.mxfp4.auto_round: auto-round-lib's mxfp4_quant_reference, where zero magnitudes are always +0.
torch, torchao and auto-round-lib run in a worker process (tests/kernel_calls.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle.conventions as conventions
from tests.kernel_calls import needs, needs_module, run

HERE = "tests.test_mx_upstream"
needs("torch", "torch is the upstream reference for these conventions")
F = np.float32


def _to_mx() -> None:
    needs_module("torchao.prototype.mx_formats.mx_tensor", "torchao MX absent")


def torchao_to_mx(w: np.ndarray, elem: str) -> tuple[np.ndarray, np.ndarray]:
    """Worker side: torchao's to_mx in blocks of 32 to e2m1 (`elem` mxfp4) or e4m3: scale bytes, element bytes."""
    import torch
    from torchao.prototype.mx_formats.mx_tensor import to_mx

    dt = torch.float4_e2m1fn_x2 if elem == "mxfp4" else torch.float8_e4m3fn
    scale, data = to_mx(torch.from_numpy(w), dt, 32)
    return scale.view(torch.uint8).numpy(), data.view(torch.uint8).numpy()


def _mx_input(seed: int) -> np.ndarray:
    """Blocks: zero, tiny (scale byte 0), float32 subnormals, near a byte boundary, half steps, mixed."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((8, 64)) * rng.uniform(1e-3, 1e3, (8, 1))).astype(F)
    w[0, :32] = 0.0
    w[1, :32] *= F(1e-38)  # amax far below 2^-124: byte 0
    w[2, :32] = F(2.0 ** -140) * rng.integers(-64, 64, 32).astype(F)  # subnormals
    w[3, :32] = F(2.0 ** -124) * rng.uniform(-1, 1, 32).astype(F)  # around the byte 0 / 1 edge
    w[4, :32] = F(0.25) * rng.integers(-24, 24, 32).astype(F)  # half steps of e2m1 at scale 1
    w[5, :32] = -np.abs(w[5, :32]) * F(1e-3)
    w[5, 0] = F(-6.0)
    return w


@pytest.mark.parametrize("elem", ["mxfp4", "mxfp8_e4m3"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mx_torchao(elem: str, seed: int) -> None:
    _to_mx()
    conv = conventions.get(f"mx.{elem}.torchao")
    w = _mx_input(seed)
    scale, data = run(HERE, "torchao_to_mx", w, elem)
    packed = conv.pack(conv.quantize(w))
    assert np.array_equal(packed["scales"], scale)
    assert np.array_equal(packed["weight"], data)
    spec = conventions.get(f"mx.{elem}").pack(conventions.get(f"mx.{elem}").quantize(w))
    assert not np.array_equal(spec["weight"], packed["weight"])  # the byte-0 blocks tell them apart


def _auto_round() -> None:
    needs_module("auto_round_kernel.mxfp4_hadamard", "auto-round-lib absent")


def auto_round_mxfp4(w: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker side: `w` in `torch.<dtype>` with signed zeros and tiny negatives beside a large value
    written in, then auto-round-lib's mxfp4_quant_reference: the input widened to float32, codes, scales."""
    import torch
    from auto_round_kernel.mxfp4_hadamard import mxfp4_quant_reference

    x = torch.from_numpy(w).to(getattr(torch, dtype))
    x[6, :32] = -0.0
    x[7, :4] = torch.tensor([-1e-4, 1e-4, -0.0, 3.0])  # negatives that round to zero beside a large value
    w = x.float().numpy()
    codes, scales = mxfp4_quant_reference(x)
    return w, codes.numpy(), scales.numpy()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mxfp4_auto_round(dtype: str, seed: int) -> None:
    _auto_round()
    conv = conventions.get("mx.mxfp4.auto_round")
    w, codes, scales = run(HERE, "auto_round_mxfp4", _mx_input(seed), dtype)
    packed = conv.pack(conv.quantize(w))
    assert np.array_equal(packed["scales"], scales)
    assert np.array_equal(packed["weight"], codes)
    spec = conventions.get("mx.mxfp4").pack(conventions.get("mx.mxfp4").quantize(w))
    assert not np.array_equal(spec["weight"], packed["weight"])  # the spec keeps the sign of zero
