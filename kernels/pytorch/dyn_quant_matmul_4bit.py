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

The spec engine calls `dyn_quant_matmul_view` (fp32 x as the caller's view, group-wise codes
and scales); channelwise blocks (block = K) and the packed buffer stay with
conformance/test_pytorch_dyn_quant.py.
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import num_threads, observe_torch, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, KernelSpec, register_spec
from oracle.ggml.fields import pack_nibbles

INFO = register(KernelInfo(
    name="torch.dyn_quant_matmul_4bit", package="torch", op="torch._dyn_quant_matmul_4bit", module=__name__,
    conventions=("torch.dyn_quant_4bit",), isa_knobs=("ATEN_CPU_CAPABILITY",), dtypes=("fp32",),
    notes="group size a multiple of 32 dividing K, or K (channelwise); torch 2.13's reference path adds a packed "
          "bias last, fp32(y + bias[n]) (not judged here)"))

_CONTRACT = "aten/src/ATen/native/LinearAlgebra.cpp _dyn_quant_matmul_4bit_cpu"
SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="dyn_quant_matmul_view", semantics="aten.dyn_quant_4bit",
    args=("x", "codes", "scales", "group"), layouts={"x": ACTIVATION_LAYOUTS}, threads=True, dtypes=("fp32",),
    groups=(32, 64, 128, 256), modelled=True,
    source=f"{_CONTRACT}: 'block_size == in_features || (!(block_size % 32) && !(in_features % block_size))' "
           "(groups of a multiple of 32 dividing K: no partial group) and 'inp.dtype() == kFloat' (torch 2.13 also "
           "takes bf16 x for block = K only: 'expect input to be float32 or bfloat16 tensor.' for a group-wise bf16 "
           "x); no contiguity check on x, whose data_ptr the reference kernel reads as M dense rows of K"))


def available() -> dict:
    return op_available("_dyn_quant_pack_4bit_weight", "_dyn_quant_matmul_4bit")


def observe() -> dict:
    return observe_torch()


def _pack(weight_bytes: np.ndarray, scales: np.ndarray, group_size: int, k: int):
    """The packed weight buffer of uint8 (N, K/2) adjacent nibbles and fp32 scales (N, K/group), no bias."""
    import torch

    return torch._dyn_quant_pack_4bit_weight(to_torch(weight_bytes), to_torch(scales), None, group_size, k,
                                             weight_bytes.shape[0])


def dyn_quant_matmul(x: np.ndarray, weight_bytes: np.ndarray, scales: np.ndarray, group_size: int) -> dict:
    """x fp32 (M, K), uint8 (N, K/2) adjacent nibbles, fp32 scales (N, K/group) -> y and the packed buffer."""
    import torch

    n, k = weight_bytes.shape[0], x.shape[1]
    packed = _pack(weight_bytes, scales, group_size, k)
    y = torch._dyn_quant_matmul_4bit(to_torch(x), packed, group_size, k, n)
    return {"y": to_numpy(y), "packed": to_numpy(packed)}


def dyn_quant_matmul_view(x: View, codes: np.ndarray, scales: np.ndarray, group: int, *,
                          threads: int | None = None) -> np.ndarray:
    """The matmul over the caller's view of x as it is, with codes (N, K) in 0..15 packed as the op's adjacent
    nibbles (even k in the low one) and their scales, packed in the same call, under `threads` ATen threads."""
    import torch

    n, k = codes.shape
    packed = _pack(pack_nibbles(codes[:, 0::2], codes[:, 1::2]), scales, group, k)
    with num_threads(threads):
        return to_numpy(torch._dyn_quant_matmul_4bit(as_torch(x), packed, group, k, n))
