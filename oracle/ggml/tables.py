"""Code tables and small scalar rules that several GGML block modules share.

Values are facts from ggml/src/ggml-common.h (the `kvalues_*` tables) and ggml/src/ggml-impl.h
(GGML_FP32_TO_FP16, ggml_e8m0_to_fp32_half); see each module for where they are used.
"""
from __future__ import annotations

import numpy as np

from oracle.ggml.fields import row_max

# ggml-common.h `kvalues_iq4nl`: the 16 non-linear IQ4_NL / IQ4_XS levels, sorted ascending.
KVALUES_IQ4NL = np.array(
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int8
)

# ggml-common.h `kvalues_fp4` (alias `kvalues_mxfp4`): the E2M1 values doubled, indexed by code.
KVALUES_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.int8)


def e8m0_to_fp32_half(e: np.ndarray) -> np.ndarray:
    """ggml_e8m0_to_fp32_half: 2^(e-128) as float32, exact, with 0 and 1 as subnormals.

    ggml does not special-case 0xFF (OCP's NaN): it gives 2^127, and so does this.
    """
    e = np.asarray(e).astype(np.uint32)
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - np.uint32(1)) << np.uint32(23))
    return bits.astype(np.uint32).view(np.float32)


def seq_max_abs(blocks: np.ndarray) -> np.ndarray:
    """`amax = MAX(amax, fabsf(v))` from amax = 0, one element at a time, as ggml's q8/tq code does.

    ggml's MAX is `a > b ? a : b`, so a NaN replaces the running max and the next value
    replaces the NaN: only a NaN in the last position survives (with its payload, sign cleared).
    Without a NaN the order does not matter, so float32 rows of a power-of-two length take an
    integer row maximum of the |x| bit patterns; rows with a NaN run the loop.
    """
    blocks = np.asarray(blocks)
    n, k = blocks.shape
    if blocks.dtype != np.float32 or k & (k - 1) or n == 0:
        return _seq_max_abs_loop(blocks)
    abs_bits = np.bitwise_and(np.ascontiguousarray(blocks).view(np.uint32), np.uint32(0x7FFFFFFF))
    amax = row_max(abs_bits).view(np.float32)
    nan = np.isnan(amax)
    if nan.any():
        amax[nan] = _seq_max_abs_loop(blocks[nan])
    return amax


def _seq_max_abs_loop(blocks: np.ndarray) -> np.ndarray:
    a = np.abs(blocks)
    amax = np.zeros(blocks.shape[0], dtype=np.float32)
    for j in range(blocks.shape[1]):
        amax = np.where(amax > a[:, j], amax, a[:, j])
    return amax


def seq_min_max(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) from FLT_MAX / -FLT_MAX with strict `v < min`, `v > max`, as q4_1 / q5_1 scan.

    NaN never wins, the first of equal values (0.0 before -0.0) is kept, and a block of +inf
    keeps min = FLT_MAX.
    """
    big = np.float32(np.finfo(np.float32).max)
    mn = np.full(blocks.shape[0], big, dtype=np.float32)
    mx = np.full(blocks.shape[0], -big, dtype=np.float32)
    for j in range(blocks.shape[1]):
        v = blocks[:, j]
        mn = np.where(v < mn, v, mn)
        mx = np.where(v > mx, v, mx)
    return mn, mx
