"""ONNX Runtime com.microsoft MatMulNBits weights (2, 4 and 8 bits) and their quantizer.

Quantizer: onnxruntime/core/mlas/lib/q4_common.h / q4_dq.cpp `BlockwiseQuantizer::quantizeAndTranspose`
with `range2scale` (symmetric: m = |max| > |min| ? max : min over the block, scale = m / -2^(b-1),
zero point 2^(b-1)) and `range2scalezp` (asymmetric: range widened to include 0,
scale = (max - min) / (2^b - 1), zp = roundf(clamp(-min / scale, 0, 2^b - 1))); codes are
clamp(roundf(x * (scale ? 1/scale : 0) + zp)), with the zero point added before rounding.
Python tooling (onnxruntime/quantization/matmul_nbits_quantizer.py, DefaultWeightOnlyQuantizer
.qbits_block_quant) pads K with zeros to whole blocks and calls the pybind helpers
`quantize_matmul_{2,4,8}bits`.

Layout (contrib_ops/cpu/quantization/matmul_nbits.cc): B is uint8 [N][n_blocks][block_size*bits/8],
the lowest bits of a byte holding the lowest k; scales [N][n_blocks] in A's dtype; zero points
uint8 [N][ceil(n_blocks*bits/8)] packed the same way along the blocks; absent zero points mean
2^(bits-1). Dequantization is (q - zp) * scale in float32.
"""
from oracle.conventions.convention import Convention, register

_SRC = ("onnxruntime/core/mlas/lib/q4_common.h: BlockwiseQuantizer::quantizeAndTranspose, range2scale, "
        "range2scalezp; onnxruntime/python/tools/quantization/matmul_nbits_quantizer.py: qbits_block_quant")
_CONFIRMED = "onnxruntime quantize_matmul_{2,4,8}bits and a MatMulNBits run (tests/test_conventions_onnxruntime.py)"

for _bits in (2, 4, 8):
    _mid = 1 << (_bits - 1)
    register(Convention(
        name=f"ort.matmulnbits.int{_bits}.sym", kind="weight", bits=_bits, symmetric=True, group_size=32,
        scale_rule="signed_absmax_min_ties", divisor=-_mid, qmin=0, qmax=(1 << _bits) - 1,
        rounding="half_away", zero_domain="fixed", zero_offset=_mid, zp_added="before_round",
        pad_groups=True, source=_SRC, confirmed=_CONFIRMED,
        summary=f"MatMulNBits {_bits}-bit symmetric: s = m/-{_mid} (m = signed max|x|, ties to min), "
                f"q = roundf(x/s + {_mid}), no zero-point input"))
    register(Convention(
        name=f"ort.matmulnbits.int{_bits}.asym", kind="weight", bits=_bits, symmetric=False, group_size=32,
        scale_rule="range_with_zero", divisor=(1 << _bits) - 1, qmin=0, qmax=(1 << _bits) - 1,
        rounding="half_away", zero_domain="int_clamp_then_round", zp_added="before_round",
        pad_groups=True, pack_zeros=True, source=_SRC, confirmed=_CONFIRMED,
        summary=f"MatMulNBits {_bits}-bit asymmetric: s = range/{(1 << _bits) - 1} (0 in range), "
                "zp = roundf(-min/s), q = roundf(x/s + zp), packed zero points"))
