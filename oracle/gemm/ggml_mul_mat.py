"""ggml_mul_mat on the CPU backend: Y[m, n] = dot(W row n, X row m) with W quantized.

Upstream (ggml 0.25.x, ggml/src/ggml-cpu/): `ggml_compute_forward_mul_mat` (ggml-cpu.c) first
quantizes each row of X to the weight type's `vec_dot_type` with that type's CPU `from_float`
(x86: `quantize_row_q8_0` / `quantize_row_q8_1` AVX2, `quantize_row_q8_K` = the reference),
then computes every output with one of:
- `vec_dot` per (row, column) over the whole of K (the path at M = 1 and the fallback);
- llamafile's `tinyBLAS_Q0_AVX` (llamafile/sgemm.cpp) for q4_0, q5_0, q8_0, iq4_nl at M >= 2;
- the tiled K-quant kernel (tiled/tiled.cpp) for q2_K..q6_K, iq4_xs at M >= 8;
- with the weight in the CPU_REPACK buffer type, the repacked GEMV (M % 4 tail rows) and GEMM
  (groups of 4 rows) kernels (repack.cpp `forward_mul_mat_one_chunk`), whose activations come
  from `ggml_quantize_mat_q8_0_4x8` / `ggml_quantize_mat_q8_K_4x8` (arch/x86/repack.cpp):
  the same codes and scales as the row quantizers above (127/amax, round to nearest even; for
  q8_K iscale = -127/max with the signed max, d = 1/iscale) except where a q8_K super-block
  holds both +amax and -amax.
All paths are: exact integer block sums, fp32 scale products, fp32 accumulation in a
path-specific order.

`activations(x, w_type)` gives the activation blocks (the oracle's model of the CPU
quantizer: x86's AVX one on AVX builds, the reference where ggml-cpu falls back to it),
`q4_0_blocks` writes w4_sym codes and scales as the q4_0 blocks ggml reads, `mul_mat_exact`
the exact value of every output from the weight and activation bytes, with a bound valid for
any fp32 evaluation order with at most 3 roundings per block term before the sum (the
derivation of oracle.gemm.ggml_vec_dot.vec_dot_exact, which this module uses for the
K-quants), and `mul_mat_predicted` the bit-exact output where the order is
modelled: q4_0 and q8_0 on AVX2 in the default buffer, where `vec_dot` (M = 1) and
tinyBLAS_Q0_AVX (M >= 2: `madd(dA*dB, updot(...), acc)` per block into 8 float lanes, each
lane the int sum of 4 adjacent byte products, then llamafile's `hsum`) both follow
oracle.gemm.ggml_vec_dot's 'avx2' model.

Block term semantics (ggml-cpu/quants.c generic vec_dots): q4_0/q5_0/q8_0/iq4_nl x q8_0:
dx*dy*sumi; q4_1/q5_1 x q8_1: dx*dy*sumi + mx*sy (sy the activation block's stored fp16 s);
mxfp4 x q8_0: E8M0_TO_FP32_HALF(e)*dy*sumi with sumi over kvalues_mxfp4 codes.
"""
from __future__ import annotations

import numpy as np

import oracle
from oracle.bounds import gamma, sum_bound
from oracle.gemm.ggml_vec_dot import vec_dot, vec_dot_exact
from oracle.ggml.fields import f16_bytes, pack_nibbles
from oracle.ggml.tables import KVALUES_IQ4NL, KVALUES_MXFP4

__all__ = ["ACT_TYPE", "ACT_CONVENTION", "TYPES", "activations", "q4_0_blocks", "mul_mat_exact", "mul_mat_predicted"]

# weight type -> the CPU backend's vec_dot_type (ggml-cpu.c type_traits_cpu)
ACT_TYPE = {"q4_0": "q8_0", "q4_1": "q8_1", "q5_0": "q8_0", "q5_1": "q8_1", "q8_0": "q8_0", "iq4_nl": "q8_0",
            "mxfp4": "q8_0", "q2_k": "q8_k", "q3_k": "q8_k", "q4_k": "q8_k", "q5_k": "q8_k", "q6_k": "q8_k"}
# the oracle's model of the x86 CPU backend's from_float for each activation type
ACT_CONVENTION = {"q8_0": "q8_0.x86", "q8_1": "q8_1.x86", "q8_k": "q8_k"}
TYPES = tuple(ACT_TYPE)
_LEGACY_BYTES = {"q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "q8_0": 34, "iq4_nl": 18, "mxfp4": 17}
_ACT_BYTES = {"q8_0": 34, "q8_1": 36}


def activations(x: np.ndarray, w_type: str, x86: bool = True) -> np.ndarray:
    """X (float32 (M, K)) quantized as the CPU backend does before multiplying by `w_type`; x86=False
    for a build without AVX, whose quantize_row_q8_0 / q8_1 fall back to the `_ref` quantizers."""
    act = ACT_TYPE[w_type]
    return oracle.quantize(np.ascontiguousarray(x, np.float32), ACT_CONVENTION[act] if x86 else act)


def q4_0_blocks(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """q4_0 weight bytes (N, K/32 * 18) holding w[n, k] = (codes[n, k] - 8) * scales[n, k // 32]:
    block_q4_0 (ggml-common.h) is exactly that, with the scale as its fp16 d, so a scale fp16 cannot
    hold exactly is refused rather than rounded (it would change the weights being judged)."""
    codes, scales = np.asarray(codes), np.asarray(scales, np.float32)
    n, k = codes.shape
    if k % 32 or scales.shape != (n, k // 32):
        raise ValueError(f"q4_0 needs K a multiple of 32 and scales (N, K/32): codes {codes.shape}, "
                         f"scales {scales.shape}")
    if codes.min(initial=0) < 0 or codes.max(initial=0) > 15:
        raise ValueError("q4_0 codes must lie in 0..15")
    d = f16_bytes(scales.reshape(-1))
    if not np.array_equal(d.view("<f2")[:, 0].astype(np.float32), scales.reshape(-1), equal_nan=True):
        raise ValueError("q4_0 scales must be exactly representable in fp16 (its block scale d)")
    q = codes.reshape(n * k // 32, 32)
    return np.concatenate([d, pack_nibbles(q[:, :16], q[:, 16:])], axis=1).reshape(n, -1)


def _f16(b: np.ndarray, off: int) -> np.ndarray:
    return np.ascontiguousarray(b[..., off:off + 2]).view("<f2")[..., 0].astype(np.float64)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """16 bytes -> 32 codes: element j is byte j's low nibble, element j + 16 its high one."""
    q = qs.astype(np.int64)
    return np.concatenate([q & 0xF, q >> 4], axis=-1)


def _fifth_bits(b: np.ndarray, off: int) -> np.ndarray:
    """q5_0/q5_1 qh (uint32 little-endian): bit j is the fifth bit of element j."""
    qh = np.ascontiguousarray(b[..., off:off + 4]).view("<u4")[..., 0].astype(np.int64)
    return (qh[..., None] >> np.arange(32)) & 1


def _legacy_weight(w_type: str, b: np.ndarray):
    """(codes (.., nb, 32) int64, scale (.., nb) float64, min (.., nb) float64 or None)."""
    if w_type == "q4_0":
        return _nibbles(b[..., 2:18]) - 8, _f16(b, 0), None
    if w_type == "q4_1":
        return _nibbles(b[..., 4:20]), _f16(b, 0), _f16(b, 2)
    if w_type == "q5_0":
        return _nibbles(b[..., 6:22]) + 16 * _fifth_bits(b, 2) - 16, _f16(b, 0), None
    if w_type == "q5_1":
        return _nibbles(b[..., 8:24]) + 16 * _fifth_bits(b, 4), _f16(b, 0), _f16(b, 2)
    if w_type == "q8_0":
        return b[..., 2:34].view(np.int8).astype(np.int64), _f16(b, 0), None
    if w_type == "iq4_nl":
        return KVALUES_IQ4NL.astype(np.int64)[_nibbles(b[..., 2:18])], _f16(b, 0), None
    if w_type == "mxfp4":  # GGML_E8M0_TO_FP32_HALF(e) = 2^(e - 128) for every e (ggml-impl.h)
        return KVALUES_MXFP4.astype(np.int64)[_nibbles(b[..., 1:17])], np.exp2(b[..., 0].astype(np.float64) - 128), None
    raise ValueError(f"no legacy-block model for {w_type}")


def _rows(data: np.ndarray, block_bytes: int) -> np.ndarray:
    a = np.asarray(data, dtype=np.uint8)
    if a.ndim != 2 or a.shape[1] % block_bytes:
        raise ValueError(f"expected uint8 (rows, a whole number of {block_bytes}-byte blocks), got {a.shape}")
    return a.reshape(a.shape[0], -1, block_bytes)


def _legacy_exact(w_type: str, w: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(exact (M, N), sum of |terms| (M, N), blocks per row, K)."""
    act = ACT_TYPE[w_type]
    wb, ab = _rows(w, _LEGACY_BYTES[w_type]), _rows(a, _ACT_BYTES[act])
    if wb.shape[1] != ab.shape[1]:
        raise ValueError(f"W has {wb.shape[1]} blocks per row, X {ab.shape[1]}")
    xq, dx, mx = _legacy_weight(w_type, wb)  # (N, nb, 32), (N, nb)
    yq = ab[..., -32:].view(np.int8).astype(np.int64)  # (M, nb, 32)
    dy = _f16(ab, 0)
    isum = np.einsum("nbe,mbe->mnb", xq, yq)  # exact: |sum| < 2^23
    iabs = np.einsum("nbe,mbe->mnb", np.abs(xq), np.abs(yq))
    s = dx[None] * dy[:, None]  # fp16 x fp16 (or 2^k x fp16): exact in float64
    terms = s * isum
    abs_terms = np.abs(s) * iabs
    if mx is not None:
        sy = _f16(ab, 2)
        mt = mx[None] * sy[:, None]
        terms = terms + mt
        abs_terms = abs_terms + np.abs(mt)
    nb = wb.shape[1]
    return terms.sum(-1), abs_terms.sum(-1), nb, nb * 32


def _bound(abs_sum: np.ndarray, nb: int, k: int) -> np.ndarray:
    """As vec_dot_exact: height k + 2 nb + 3, 3 roundings per term, plus the float64 evaluation."""
    n_terms = k + 2 * nb
    return sum_bound(abs_sum, n_terms + 3, "fp32", n_products=3 * n_terms) + gamma(n_terms + 3, "fp64") * abs_sum


def mul_mat_exact(w_type: str, w: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact Y (M, N) float64, bound (M, N)) from weight bytes (N, row bytes) and activation
    bytes (M, row bytes of the vec_dot type)."""
    w_type = w_type.lower()
    if w_type not in ACT_TYPE:
        raise ValueError(f"no mul_mat model for {w_type}; known: {', '.join(TYPES)}")
    if ACT_TYPE[w_type] != "q8_k":
        exact, abs_sum, nb, k = _legacy_exact(w_type, w, a)
        return exact, _bound(abs_sum, nb, k)
    w, a = np.asarray(w, np.uint8), np.asarray(a, np.uint8)
    m, n = a.shape[0], w.shape[0]
    exact = np.empty((m, n), np.float64)
    bound = np.empty((m, n), np.float64)
    for i in range(m):  # one activation row against every weight row: vec_dot_exact pairs rows
        e, b = vec_dot_exact(w_type, "q8_k", w, np.repeat(a[i:i + 1], n, axis=0))
        exact[i], bound[i] = e, b
    return exact, bound


def mul_mat_predicted(w_type: str, w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Bit-exact float32 Y (M, N) of the default-buffer AVX2 paths for q4_0 and q8_0 (see the
    module docstring); ValueError for any other type."""
    if w_type not in ("q4_0", "q8_0"):
        raise ValueError(f"no bit-exact mul_mat model for {w_type}")
    w, a = np.asarray(w, np.uint8), np.asarray(a, np.uint8)
    m, n = a.shape[0], w.shape[0]
    out = np.empty((m, n), np.float32)
    with np.errstate(invalid="ignore"):  # an inf activation scale times a zero lane: NaN, as the kernel gives
        for i in range(m):
            out[i] = vec_dot(w_type, "q8_0", w, np.repeat(a[i:i + 1], n, axis=0), variant="avx2")
    return out
