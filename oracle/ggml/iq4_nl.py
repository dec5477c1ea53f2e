"""IQ4_NL: 32 values as 4-bit indices into a fixed non-linear table, with one fp16 scale.

Byte layout (ggml-common.h `block_iq4_nl`, 18 bytes):
    0..1   d      fp16 scale
    2..17  qs[16] byte j = idx(x[j]) | idx(x[j+16]) << 4   (j / j+16 pairing)
Dequantize (ggml-quants.c `dequantize_row_iq4_nl`): x = fp32(d) * kvalues_iq4nl[idx].

Quantize: `ggml_quantize_chunk` -> `quantize_iq4_nl` -> `quantize_row_iq4_nl_impl` with
ntry = 7 and no imatrix, so the weights are w = x*x. Per 32-value block (`subblock_scales`):
  amax, max = the first largest |x| (strict `>`); amax < 1e-15f gives scale 0;
  d = -max / -127, id = 1/d; one pass of idx = best_index_int8(id*x), q = kvalues[idx],
  sumqx += w*q*x, sumq2 += w*q*q (float32, in order); d = sumq2 > 0 ? sumqx/sumq2 : 0,
  best = d*sumqx; then for itry = -7..7: id = (itry - 127)/max and the same pass, taking
  d = sumqx/sumq2, best = d*sumqx whenever sumq2 > 0 and sumqx*sumqx > best*sumq2.
The stored d is fp16(scale) and the final indices are best_index_int8(x * (1/scale)) from
the float32 scale (0 when the scale is 0).

`best_index_int8` (ggml-quants.c, the version llama-cpp-python 0.3.36 vendors) returns 0 for
x <= -127 and 15 for x >= 113, else bisects to the bracketing pair and picks the lower one
only when `x - lo < hi - x` in float32 (ties go up; a NaN bisects to 15). Newer ggml
(2026) compares x + x against lo + hi instead; the two agree except where the float32
subtractions round, which this module does not model.

ggml-base is built for baseline x86-64, so nothing is fused; an FMA-contracted build (aarch64)
may fuse `id*x - lo` and the `w*q*x` accumulations, which is not modelled. The CPU backend's
from_float (`quantize_row_iq4_nl_ref`, ntry = -1, used by ggml_cpy) is a different search and
is not modelled either.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, first_absmax, sum_in_order, unpack_nibbles
from oracle.ggml.tables import KVALUES_IQ4NL

QK = 32
NTRY = 7
GROUP_MAX_EPS = np.float32(1e-15)
_V = KVALUES_IQ4NL.astype(np.float32)


def best_index_int8(x: np.ndarray) -> np.ndarray:
    """ggml's `best_index_int8(16, kvalues_iq4nl, x)` elementwise on float32 x; returns int64."""
    x = np.asarray(x, dtype=np.float32)
    ml = np.zeros(x.shape, dtype=np.int64)
    mu = np.full(x.shape, 15, dtype=np.int64)
    while True:
        active = (mu - ml) > 1
        if not active.any():
            break
        mav = (ml + mu) // 2
        below = x < _V[mav]
        mu = np.where(active & below, mav, mu)
        ml = np.where(active & ~below, mav, ml)
    with np.errstate(invalid="ignore", over="ignore"):
        lower = (x - _V[mu - 1]) < (_V[mu] - x)
    idx = np.where(lower, mu - 1, mu)
    idx = np.where(x >= _V[15], 15, idx)
    return np.where(x <= _V[0], 0, idx)


def _pass(xb: np.ndarray, w: np.ndarray, inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One scale trial: (sumqx, sumq2) summed in order over the block."""
    with np.errstate(invalid="ignore", over="ignore"):
        q = _V[best_index_int8((inv[:, None] * xb).astype(np.float32))]
        wq = (w * q).astype(np.float32)
        return sum_in_order((wq * xb).astype(np.float32)), sum_in_order((wq * q).astype(np.float32))


def subblock_scales(xb: np.ndarray) -> np.ndarray:
    """The float32 scale `quantize_row_iq4_nl_impl` (ntry = 7, no imatrix) finds for each 32-value row."""
    with np.errstate(over="ignore", invalid="ignore"):
        w = (xb * xb).astype(np.float32)
    amax, mx = first_absmax(xb)
    small = amax < GROUP_MAX_EPS
    safe_max = np.where(small, np.float32(1), mx).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = ((-safe_max) / np.float32(KVALUES_IQ4NL[0])).astype(np.float32)
        sumqx, sumq2 = _pass(xb, w, (np.float32(1) / d).astype(np.float32))
        d = np.where(sumq2 > 0, sumqx / np.where(sumq2 > 0, sumq2, np.float32(1)), np.float32(0)).astype(np.float32)
        best = (d * sumqx).astype(np.float32)
        for itry in range(-NTRY, NTRY + 1):
            inv = (np.float32(itry + int(KVALUES_IQ4NL[0])) / safe_max).astype(np.float32)
            sumqx, sumq2 = _pass(xb, w, inv)
            take = (sumq2 > 0) & ((sumqx * sumqx).astype(np.float32) > (best * sumq2).astype(np.float32))
            d = np.where(take, (sumqx / np.where(take, sumq2, np.float32(1))).astype(np.float32), d)
            best = np.where(take, (d * sumqx).astype(np.float32), best)
    return np.where(small, np.float32(0), d).astype(np.float32)


def pack_indices(idx: np.ndarray) -> np.ndarray:
    """(n, 32k) indices -> (n, 16k) bytes, idx[32i + j] | idx[32i + 16 + j] << 4."""
    c = idx.astype(np.uint8).reshape(idx.shape[0], -1, 2, 16)
    return (c[:, :, 0] | (c[:, :, 1] << np.uint8(4))).reshape(idx.shape[0], -1)


def unpack_values(qs: np.ndarray) -> np.ndarray:
    """(n, 16k) bytes -> (n, 32k) float32 table values, in the order of `pack_indices`."""
    lo, hi = unpack_nibbles(qs.reshape(qs.shape[0], -1, 16))
    return _V[np.concatenate([lo, hi], axis=2).reshape(qs.shape[0], -1)]


class IQ4_NL(Format, name="iq4_nl"):
    block_size = QK
    block_bytes = 18
    source = "ggml/src/ggml-quants.c: quantize_iq4_nl (quantize_row_iq4_nl_impl, ntry=7), dequantize_row_iq4_nl"
    summary = "GGML iq4_nl, 32 x 4-bit indices into kvalues_iq4nl, weighted scale search (15 tries), fp16 d"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        scale = subblock_scales(blocks)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            inv = np.where(scale != 0, np.float32(1) / np.where(scale != 0, scale, np.float32(1)), np.float32(0))
            idx = best_index_int8((inv.astype(np.float32)[:, None] * blocks).astype(np.float32))
        return np.concatenate([f16_bytes(scale), pack_indices(idx)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 0)
        with np.errstate(invalid="ignore"):
            return (d[:, None] * unpack_values(blocks[:, 2:])).astype(np.float32)
