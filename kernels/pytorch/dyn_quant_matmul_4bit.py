"""torch._dyn_quant_pack_4bit_weight + torch._dyn_quant_matmul_4bit (fp32 in, fp32 out).

Upstream: aten/src/ATen/native/cpu/int4mm_kernel.cpp `dyn_quant_pack_4bit_weight_kernel`,
`dyn_quant_matmul_4bit_kernel`. Without KleidiAI (every x86 build) the packed buffer is the
float32 concatenation of the uint8 weight bytes and the float scales, and the matmul is the
scalar reference `ref_dyn_quant_matmul_4bit_{channelwise,groupwise}_kernel`: per-row asymmetric
int8 activations (range widened to 0, inverse scale 255/range, `std::round`, an `lrintf` zero
point), exact int32 block sums of (a_q - zp) * (nibble - 8), and `acc += isum * w_scale` per
block, finally `* (1/a_scale)`. The file is compiled once per ATen capability, so the AVX2 and
AVX512 builds may contract `acc += isum * w_scale` into an FMA: the observed capability says
which arithmetic to expect.
"""
from __future__ import annotations

import numpy as np

from kernels.pytorch._torch import observe_torch, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register

INFO = register(KernelInfo(
    name="torch.dyn_quant_matmul_4bit", package="torch", op="torch._dyn_quant_matmul_4bit", module=__name__,
    conventions=("torch.dyn_quant_4bit",), isa_knobs=("ATEN_CPU_CAPABILITY",), dtypes=("fp32",),
    notes="group size a multiple of 32 dividing K, or K (channelwise); no bias on the reference path"))


def available() -> dict:
    return op_available("_dyn_quant_pack_4bit_weight", "_dyn_quant_matmul_4bit")


def observe() -> dict:
    return observe_torch()


def dyn_quant_matmul(x: np.ndarray, weight_bytes: np.ndarray, scales: np.ndarray, group_size: int) -> dict:
    """x fp32 (M, K), uint8 (N, K/2) adjacent nibbles, fp32 scales (N, K/group) -> y and the packed buffer."""
    import torch

    n, k = weight_bytes.shape[0], x.shape[1]
    packed = torch._dyn_quant_pack_4bit_weight(to_torch(weight_bytes), to_torch(scales), None, group_size, k, n)
    y = torch._dyn_quant_matmul_4bit(to_torch(x), packed, group_size, k, n)
    return {"y": to_numpy(y), "packed": to_numpy(packed)}
