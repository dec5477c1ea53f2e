"""tinygemm.torchao{,.bf16,.fp16} against torchao's Int4OpaqueTensor.from_hp and torch's CPU kernel.

from_hp computes scale, zero and codes in the weight's dtype, so a bf16 weight gets other bytes
than its float32 copy; the kernel forms each weight with one FMA, (q - 8) * s + z rounded once.
Corners: all-zero and tiny groups (the 1e-6 scale floor), constant groups, subnormals, groups
whose values sit on half code steps, and every group size from_hp accepts.
torch and torchao run in a worker process (tests/kernel_calls.py).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import oracle.conventions as conventions
from tests.kernel_calls import int4pack_identity, needs, needs_module, run, to_torch

HERE = "tests.test_tinygemm_bf16"
KC = "tests.kernel_calls"
needs("torch", "torch is the upstream reference for these conventions")
F = np.float32
_DTYPES = {"tinygemm.torchao": "float32", "tinygemm.torchao.bf16": "bfloat16", "tinygemm.torchao.fp16": "float16"}


def _opaque() -> None:
    needs_module("torchao.prototype.quantization.int4.int4_opaque_tensor", "torchao Int4OpaqueTensor absent")


def from_hp(w: np.ndarray, dtype: str, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Worker side: torchao's Int4OpaqueTensor.from_hp on `w` converted to `torch.<dtype>`: the
    packed weight and the scales and zeros widened to float32."""
    import torch
    from torchao.prototype.quantization.int4.int4_opaque_tensor import Int4OpaqueTensor

    t = Int4OpaqueTensor.from_hp(to_torch(w).to(getattr(torch, dtype)), [1, group])
    return t.qdata.numpy(), t.scale_and_zero.float().numpy()


def cpu_capability() -> str:
    """Worker side: the ISA torch's CPU kernels were dispatched to."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def _corner_weights(seed: int, n: int, k: int, group: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n, k)) * rng.uniform(0.01, 100, (n, 1))).astype(F)
    w[0] = 0.0
    w[1, :group] = F(1e-8)  # constant and below the scale floor
    w[2, :group] = F(3.0)
    w[3, :group] *= F(1e-7)  # range / 15 below 1e-6
    w[4, :group] = F(2.0 ** -130) * np.arange(group, dtype=F)  # float32 subnormals (zero in fp16)
    w[5, :group] = F(0.125) * (np.arange(group, dtype=F) % 16) + F(1 / 16)  # half code steps
    w[6, :group] = -w[6, :group] ** 2
    return w


@pytest.mark.parametrize("name", sorted(_DTYPES))
@pytest.mark.parametrize("group", [32, 64, 128])
@pytest.mark.parametrize("seed", [0, 1])
def test_from_hp_bytes(name: str, group: int, seed: int) -> None:
    _opaque()
    conv = dataclasses.replace(conventions.get(name), group_size=group)
    w = _corner_weights(seed, 16, 256, group)
    qdata, scale_and_zero = run(HERE, "from_hp", w, _DTYPES[name], group)
    p = conv.pack(conv.quantize(w))
    packed = run(KC, "torch_op", "_convert_weight_to_int4pack_for_cpu", p["weight"], 1)
    assert qdata.dtype == packed.dtype and np.array_equal(qdata, packed)
    assert np.array_equal(scale_and_zero.view(np.uint32), p["scales_and_zeros"].view(np.uint32))


def test_bf16_weights_are_not_the_float32_convention() -> None:
    """The float32 convention on the bf16-rounded weight gives other scales: the dtype matters."""
    w = _corner_weights(3, 16, 256, 32)
    wb = run(KC, "torch_cast", w, "bfloat16").astype(F)
    ours32 = conventions.get("tinygemm.torchao").quantize(wb)
    ours16 = conventions.get("tinygemm.torchao.bf16").quantize(w)
    assert not np.array_equal(ours32.scales, ours16.scales)


def test_kernel_dequantizes_with_one_fma() -> None:
    """Identity activations read the weights back: fmaf(q - 8, s, z), not (q - 8) * s then + z."""
    if run(HERE, "cpu_capability") not in ("AVX2", "AVX512"):
        pytest.skip("only the AVX2/AVX-512 kernels are pinned to fmadd")
    conv = conventions.get("tinygemm.torchao")
    w = _corner_weights(4, 16, 128, 32)
    qw = conv.quantize(w)
    p = conv.pack(qw)
    got = int4pack_identity(p["weight"], p["scales_and_zeros"], 32)
    two = ((qw.codes - 8).astype(F) * np.repeat(qw.scales, 32, axis=1)).astype(F) + np.repeat(qw.zeros, 32, axis=1)
    assert np.array_equal(got.view(np.uint32), conv.dequantize(qw).view(np.uint32))
    assert not np.array_equal(got, two)  # the two readings differ on these weights
