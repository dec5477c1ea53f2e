"""Q5_0: 32 values as 5-bit codes around 16 with one fp16 scale.

Byte layout (ggml-common.h `block_q5_0`, 22 bytes):
    0..1   d      fp16 scale
    2..5   qh     uint32 little-endian: bit j = bit 4 of code(x[j]), j = 0..31
    6..21  qs[16] byte j = low4(code(x[j])) | low4(code(x[j+16])) << 4
Dequantize (ggml-quants.c `dequantize_row_q5_0`): x = (code - 16)*fp32(d).

Quantize (ggml-quants.c `quantize_row_q5_0_ref`, which `quantize_q5_0` calls without an
imatrix): as q4_0 with 16 in place of 8: max = the signed value of the first largest |x|;
d = max / -16; id = d ? 1/d : 0 from the float32 d; code = MIN(31, (int8_t)(x*id + 16.5f)).
`x*id + 16.5f` is contractible exactly like q4_0's `+ 8.5f`, hence `q5_0.nofma` (x86-64
ggml-base, gguf-py), `q5_0.fma` (FMA-contracted builds such as aarch64) and `q5_0` = nofma.
The dequantizer has no addition, so both variants dequantize alike. A subnormal d makes 1/d
overflow and the casts of inf/NaN give INT_MIN's low byte, 0 (`c_float_to_int`).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, first_absmax, unpack_nibbles
from oracle.rounding import c_float_to_int, fmaf

QK = 32


def pack_q5(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """5-bit codes (n, 32) -> (qh (n, 4), qs (n, 16)) in ggml's q5 layout."""
    code = code.astype(np.uint8)
    qh = np.packbits((code >> np.uint8(4)) & np.uint8(1), axis=1, bitorder="little")
    qs = (code[:, : QK // 2] & np.uint8(0x0F)) | ((code[:, QK // 2 :] & np.uint8(0x0F)) << np.uint8(4))
    return qh, qs


def unpack_q5(qh: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """(qh (n, 4), qs (n, 16)) -> 5-bit codes (n, 32) as uint8."""
    hi = np.unpackbits(qh, axis=1, bitorder="little")
    lo, up = unpack_nibbles(qs)
    return np.concatenate([lo, up], axis=1) | (hi << np.uint8(4))


class Q5_0(Format, name="q5_0.nofma"):
    block_size = QK
    block_bytes = 22
    source = "ggml/src/ggml-quants.c: quantize_row_q5_0_ref, dequantize_row_q5_0 (x*id + 16.5f unfused)"
    summary = "GGML q5_0, 32 x 5-bit, d = max/-16 (fp16), trunc(x*id + 16.5), qh bit plane; unfused"
    fused: bool = False

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        _, mx = first_absmax(blocks)
        d = (mx / np.float32(-16)).astype(np.float32)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
            inv = inv.astype(np.float32)
            if cls.fused:
                t = fmaf(blocks, np.broadcast_to(inv[:, None], blocks.shape), np.float32(16.5))
            else:
                t = (blocks * inv[:, None]).astype(np.float32) + np.float32(16.5)
        code = np.minimum(31, c_float_to_int(t, 8)).astype(np.uint8)  # negative wraps as uint8_t does
        qh, qs = pack_q5(code)
        return np.concatenate([f16_bytes(d), qh, qs], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 0)
        q = unpack_q5(blocks[:, 2:6], blocks[:, 6:]).astype(np.int32) - 16
        with np.errstate(invalid="ignore"):
            return (q.astype(np.float32) * d[:, None]).astype(np.float32)


class Q5_0Ref(Q5_0, name="q5_0"):
    summary = "GGML q5_0 as x86-64 builds and gguf-py round it (alias of q5_0.nofma)"


class Q5_0Fma(Q5_0, name="q5_0.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q5_0_ref compiled with FMA contraction (aarch64)"
    summary = "GGML q5_0 with x*id + 16.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"
    fused = True
