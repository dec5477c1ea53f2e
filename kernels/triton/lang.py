"""Device functions the kernels share: exact roundings that do not depend on where they run.

Written with integer and exact float steps only, so the interpreter (numpy) and the GPU agree bit
for bit: the interpreter casts fp32 to bf16 by truncation while the GPU's cvt rounds to nearest
even, so the kernels round to bf16 themselves; a float -> int cast of a value out of range is
undefined in numpy and saturating on the GPU, so values are clamped first.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def round_half_away(t):
    """C roundf / libdevice round on fp32 values of magnitude < 2^31 (exact steps only)."""
    r = t.to(tl.int32)  # toward zero
    frac = t - r.to(tl.float32)  # exact: t and trunc(t) share the exponent range
    return r + (frac >= 0.5).to(tl.int32) - (frac <= -0.5).to(tl.int32)


@triton.jit
def round_half_even(t):
    """rint / cvt.rni on fp32 values of magnitude < 2^31."""
    r = t.to(tl.int32)
    frac = t - r.to(tl.float32)
    up = (frac > 0.5) | ((frac == 0.5) & ((r & 1) == 1))
    down = (frac < -0.5) | ((frac == -0.5) & ((r & 1) == 1))
    return r + up.to(tl.int32) - down.to(tl.int32)


@triton.jit
def to_bf16_rne(y):
    """fp32 -> bf16 with round to nearest even (NaN stays a quiet NaN)."""
    u = y.to(tl.uint32, bitcast=True)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    bits = tl.where(nan, (u >> 16) | 0x40, rounded)
    return bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def cast_out(y, OUT: tl.constexpr):
    """fp32 -> the output dtype by RNE: 0 fp32, 1 fp16, 2 bf16."""
    if OUT == 1:
        return y.to(tl.float16)
    elif OUT == 2:
        return to_bf16_rne(y)
    else:
        return y


OUT_CODES = {"fp32": 0, "fp16": 1, "bf16": 2}
