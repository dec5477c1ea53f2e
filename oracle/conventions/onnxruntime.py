"""ONNX Runtime com.microsoft MatMulNBits weights (2, 4 and 8 bits) and their quantizer.

Quantizer: onnxruntime/core/mlas/lib/q4_dq.cpp (declarations in q4common.h and
core/mlas/inc/mlas_q4.h) `BlockwiseQuantizer<T, block, bits, true>::quantizeAndTranspose`, reached
through `MlasQuantizeBlockwise` from the pybind helpers `quantize_matmul_{2,4,8}bits`
(onnxruntime/python/onnxruntime_pybind_quant.cc). Scales come from `range2scale` (symmetric:
m = |max| > |min| ? max : min over the block, scale = m / -2^(b-1), zero point 2^(b-1)) or
`range2scalezp` (asymmetric: range widened to include 0, scale = (max - min) / (2^b - 1),
zp = roundf(clamp(0 - min / scale, 0, 2^b - 1)), a true division, not min * (1/scale));
codes are clamp(roundf(x * (scale ? 1/scale : 0) + zp)), the zero point added before rounding.
Where |scale| is so small that 1/scale overflows to inf, a 0.0 input gives 0 * inf = NaN, which
the x86 float-to-integer conversion turns into code 0 (not the zero point).

K off the block: the bytes past K hold different things depending on the caller, so there are
two conventions per bit width and symmetry:
- `ort.matmulnbits.int{b}.{sym,asym}`: ONNX Runtime's own tooling,
  onnxruntime/quantization/matmul_nbits_quantizer.py `DefaultWeightOnlyQuantizer.qbits_block_quant`
  (QOperator format; onnxruntime 1.32.0 lines 992-1026). It pads the weight with zeros but
  passes the unpadded K to the helper, so MLAS never writes the padding: those codes stay 0 from
  the `np.zeros` output buffer. In the byte holding the last real code (K not a multiple of
  8/bits) the unused slots keep the codes the quantizer's per-thread `vi[]` array held for the
  previous byte of the same thread block (`block * 8/bits` rows), or 0 at the start of one.
- `ort.matmulnbits.int{b}.{sym,asym}.padded_k`: the helper called with K already padded to whole
  blocks: every padded code is the quantized 0.0 of its block, the zero point, or 0 where
  1/scale overflows.

Layout (contrib_ops/cpu/quantization/matmul_nbits.cc): B is uint8 [N][n_blocks][block_size*bits/8],
the lowest bits of a byte holding the lowest k; scales [N][n_blocks] in A's dtype; zero points
uint8 [N][ceil(n_blocks*bits/8)] packed the same way along the blocks; absent zero points mean
2^(bits-1). Dequantization is (q - zp) * scale in float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.convention import Convention, QuantizedWeight, register

__all__ = ["MatMulNBitsConvention"]

_SRC = ("onnxruntime/core/mlas/lib/q4_dq.cpp: BlockwiseQuantizer::quantizeAndTranspose, range2scale, "
        "range2scalezp (q4common.h, inc/mlas_q4.h MlasQuantizeBlockwise); "
        "onnxruntime/python/onnxruntime_pybind_quant.cc: quantize_matmul_{2,4,8}bits")
_TOOL = ("; onnxruntime/quantization/matmul_nbits_quantizer.py (1.32.0, lines 992-1026): "
         "DefaultWeightOnlyQuantizer.qbits_block_quant")
_CONFIRMED = ("onnxruntime 1.32.0: qbits_block_quant, quantize_matmul_{2,4,8}bits and a MatMulNBits run "
              "(tests/test_conventions_onnxruntime.py, tests/test_ort_matmulnbits_corners.py)")
_PAD_FILLS = ("untouched", "quantized_zero")


@dataclass(frozen=True)
class MatMulNBitsConvention(Convention):
    """A MatMulNBits convention that also says what the codes past K hold (see the module docstring).

    pad_fill: "untouched" (the tooling: 0, with stale slots in the last real byte) or
    "quantized_zero" (K padded before MLAS runs: the code MLAS gives 0.0 in that block).
    """

    pad_fill: str = "untouched"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pad_fill not in _PAD_FILLS:
            raise ValueError(f"{self.name}: pad_fill {self.pad_fill!r} is not one of {_PAD_FILLS}")

    def _padded(self, codes: np.ndarray, qw: QuantizedWeight) -> np.ndarray:
        k, g, per = codes.shape[1], self.group_size, 8 // self.bits
        if self.pad_fill == "quantized_zero":
            fill = _code_of_zero(qw.scales[:, -1], self.zero_offset if qw.zeros is None else qw.zeros[:, -1])
        else:
            fill = np.zeros(codes.shape[0], dtype=np.int32)
        out = np.concatenate([codes, np.repeat(fill[:, None].astype(codes.dtype), -k % g, axis=1)], axis=1)
        last = (k - 1) - (k - 1) % per  # first index of the byte holding code k - 1
        if self.pad_fill == "untouched" and last + per > k and last % (g * per):
            out[:, k:last + per] = codes[:, k - per:last]  # stale vi[] slots: the byte before, same thread block
        return out


def _code_of_zero(scale: np.ndarray, zp: np.ndarray | int) -> np.ndarray:
    """MLAS's code for 0.0: roundf(0 * (1/s) + zp), where 0 * inf = NaN converts to 0 on x86."""
    s = np.asarray(scale, dtype=np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(s != 0, np.float32(1) / np.where(s != 0, s, np.float32(1)), np.float32(0))
    return np.where(np.isfinite(inv), np.asarray(zp, dtype=np.int32), 0).astype(np.int32)


for _bits in (2, 4, 8):
    _mid = 1 << (_bits - 1)
    for _fill, _suffix, _src in (("untouched", "", _SRC + _TOOL), ("quantized_zero", ".padded_k", _SRC)):
        _pad = ("codes past K stay 0 (the tooling passes the unpadded K)" if _fill == "untouched" else
                "codes past K are the quantized 0.0 (0 where 1/s overflows)")
        register(MatMulNBitsConvention(
            name=f"ort.matmulnbits.int{_bits}.sym{_suffix}", kind="weight", bits=_bits, symmetric=True,
            group_size=32, scale_rule="signed_absmax_min_ties", divisor=-_mid, qmin=0, qmax=(1 << _bits) - 1,
            rounding="half_away", zero_domain="fixed", zero_offset=_mid, zp_added="before_round",
            pad_groups=True, pad_fill=_fill, source=_src, confirmed=_CONFIRMED,
            summary=f"MatMulNBits {_bits}-bit symmetric: s = m/-{_mid} (m = signed max|x|, ties to min), "
                    f"q = roundf(x/s + {_mid}), no zero-point input; {_pad}"))
        register(MatMulNBitsConvention(
            name=f"ort.matmulnbits.int{_bits}.asym{_suffix}", kind="weight", bits=_bits, symmetric=False,
            group_size=32, scale_rule="range_with_zero", divisor=(1 << _bits) - 1, qmin=0, qmax=(1 << _bits) - 1,
            rounding="half_away", zero_domain="int_clamp_then_round", zp_added="before_round",
            pad_groups=True, pack_zeros=True, pad_fill=_fill, source=_src, confirmed=_CONFIRMED,
            summary=f"MatMulNBits {_bits}-bit asymmetric: s = range/{(1 << _bits) - 1} (0 in range), "
                    f"zp = roundf(0 - min/s), q = roundf(x/s + zp), packed zero points; {_pad}"))
