"""Evidence for GGML NVFP4 (oracle/ggml/nvfp4.py): gguf-py and libggml, byte for byte.

gguf-py 0.19 has `NVFP4.dequantize_blocks` and the scale encoder `NVFP4.fp32_to_ue4m3` but no
quantizer (`gguf.quants.quantize` raises NotImplementedError for NVFP4), so gguf-py checks
the dequantizer and the scale byte; libggml (llama-cpp-python's, in a worker process, through
kernels/ggml/libggml.py: `ggml_quantize_chunk` -> `quantize_nvfp4` -> `quantize_row_nvfp4_ref`,
and the type's `to_float` = `dequantize_row_nvfp4`) checks everything, on random data from
1e-30 to 1e30 and on crafted blocks: the UE4M3 rounding boundaries (subnormal round-half-up,
the [7.5, 8) * 2^-9 clamp, bit-19 ties, the carry into the exponent, saturation to 0x7E),
midpoints of the E2M1 grid, zeros of both signs, inf and NaN.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oracle
from oracle.ggml.nvfp4 import ue4m3_byte, ue4m3_to_fp32_half
from tests.kernel_calls import libggml

F32 = np.float32
K = 512


def _lib():
    """libggml in the worker process (tests/kernel_calls.py), never in this one."""
    lib = libggml()
    if "nvfp4" not in lib.type_names():
        pytest.skip(f"libggml {lib.version} has no nvfp4 type")
    return lib


@pytest.fixture(scope="module")
def lib():
    return _lib()


@pytest.fixture(scope="module")
def gq():
    return pytest.importorskip("gguf.quants", reason="gguf-py (the gguf package) is the reference here")


def _gguf_dequantize(gq, q: np.ndarray) -> np.ndarray:
    from gguf import GGMLQuantizationType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gq.dequantize(q, GGMLQuantizationType.NVFP4).astype(F32, copy=False)


def _random_rows(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [(rng.standard_normal((8, K)) * s).astype(F32)
            for s in (1e-30, 1e-8, 1e-4, 0.03, 1.0, 7.0, 300.0, 1e4, 1e5, 1e30)]
    rows.append(rng.uniform(-1, 1, (8, K)).astype(F32) * np.finfo(F32).max)
    return np.concatenate(rows)


def _scale_boundaries() -> np.ndarray:
    """amax/6 values at and next to every place ggml_fp32_to_ue4m3 changes its answer."""
    pts = []
    for m in range(0, 9):  # subnormal: x*512 + 0.5 truncated, and the [7.5, 8) clamp
        pts.append((m + 0.5) * 2.0**-9)
    pts += [7.5 * 2.0**-9, 7.9 * 2.0**-9, 2.0**-6]
    for e in range(-6, 9):  # normal: ties on mantissa bit 19 and the carry into the exponent
        for m in range(8):
            pts.append((1 + (m + 0.5) / 8) * 2.0**e)
            pts.append((1 + m / 8) * 2.0**e)
    pts += [240.0, 247.9, 248.0, 300.0, 448.0, 449.0, 1e6]
    t = np.array(pts, dtype=F32)
    return np.unique(np.concatenate([t, np.nextafter(t, F32(0)), np.nextafter(t, F32(np.inf))]))


def _scale_sweep_rows() -> np.ndarray:
    """One non-zero element per 16-value sub-block, so its byte is ue4m3(amax / 6)."""
    t = _scale_boundaries()
    amax = np.unique(np.concatenate([(t * F32(6)).astype(F32), np.nextafter((t * F32(6)).astype(F32), F32(0)),
                                     np.nextafter((t * F32(6)).astype(F32), F32(np.inf))]))
    n = -(-amax.size // (K // 16)) * (K // 16)
    a = np.zeros(n, F32)
    a[: amax.size] = amax
    x = np.zeros((n, 16), F32)
    x[:, 3] = a
    x[1::2, 3] *= F32(-1)
    return x.reshape(-1, K)


def _crafted_rows(seed: int = 5) -> np.ndarray:
    """Zero, signed-zero, constant, inf, NaN and E2M1-midpoint sub-blocks, each 16 wide."""
    rng = np.random.default_rng(seed)
    subs = [np.zeros(16, F32), np.full(16, F32(-0.0)), np.full(16, F32(1.5)), np.full(16, F32(-3.0)),
            np.full(16, F32(1e-45)), np.full(16, np.finfo(F32).max), np.full(16, np.inf, F32),
            np.full(16, -np.inf, F32), np.full(16, np.nan, F32)]
    for pos in (0, 7, 8, 15):
        r = rng.standard_normal(16).astype(F32)
        r[pos] = np.nan
        subs.append(r)
        r = rng.standard_normal(16).astype(F32)
        r[pos] = np.inf if pos % 2 else -np.inf
        subs.append(r)
    grid = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=F32)
    mids = (grid[:-1] + grid[1:]) / 2
    for d in (F32(2.0**-9), F32(2.0**-4), F32(1.0), F32(1.125), F32(56.0)):  # exact UE4M3 scales
        for _ in range(4):
            r = (rng.choice(np.concatenate([mids, -mids, grid, -grid]), 16) * d).astype(F32)
            r[rng.integers(16)] = 6 * d
            subs.append(r)
    x = np.stack(subs)
    pad = -(-x.shape[0] // (K // 16)) * (K // 16) - x.shape[0]
    return np.concatenate([x, np.zeros((pad, 16), F32)]).reshape(-1, K)


def _assert_same_bytes(ours: np.ndarray, theirs: np.ndarray, x: np.ndarray) -> None:
    bad = np.argwhere(ours != theirs)
    if bad.size:
        r, c = bad[0]
        blk = c // 36
        raise AssertionError(f"{len(bad)} bytes differ; first row {r} byte {c} (block {blk}): ours "
                             f"{ours[r, blk * 36:(blk + 1) * 36].tobytes().hex()} theirs "
                             f"{theirs[r, blk * 36:(blk + 1) * 36].tobytes().hex()}; "
                             f"x {x[r, blk * 64:(blk + 1) * 64].tolist()}")


def _assert_same_f32(ours: np.ndarray, theirs: np.ndarray) -> None:
    same = ours.view(np.uint32) == theirs.view(np.uint32)
    assert same.all(), f"{(~same).sum()} values differ; first at {np.argwhere(~same)[0].tolist()}"


# --- geometry ---------------------------------------------------------------------------------

def test_geometry_matches_gguf_and_libggml(gq, lib) -> None:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    fmt = oracle.get_format("nvfp4")
    assert (fmt.block_size, fmt.block_bytes) == GGML_QUANT_SIZES[GGMLQuantizationType.NVFP4]
    assert (fmt.block_size, fmt.block_bytes) == (lib.block_size("nvfp4"), lib.type_size("nvfp4"))
    assert lib.type_id("nvfp4") == int(GGMLQuantizationType.NVFP4) == 40


# --- gguf-py ----------------------------------------------------------------------------------

def test_dequantize_matches_gguf_on_every_scale_byte(gq) -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(0, 256, (1024, 36), dtype=np.uint8)
    q[:256, 0] = np.arange(256)
    q[256:512, 2] = np.arange(256)
    q = q.reshape(-1, 4 * 36)
    _assert_same_f32(oracle.dequantize(q, "nvfp4"), _gguf_dequantize(gq, q))


def test_dequantize_matches_gguf_on_quantized(gq) -> None:
    x = np.concatenate([_random_rows(2), _crafted_rows(), _scale_sweep_rows()])
    with np.errstate(all="ignore"):
        q = oracle.quantize(x, "nvfp4")
    _assert_same_f32(oracle.dequantize(q, "nvfp4"), _gguf_dequantize(gq, q))


def test_scale_byte_matches_gguf_encoder(gq) -> None:
    """gguf-py's NVFP4.fp32_to_ue4m3 mirrors ggml_fp32_to_ue4m3 except for NaN (it gives 0x7E,
    C's `!(x > 0)` gives 0); quantize never passes NaN (amax skips it), so NaN is left out."""
    rng = np.random.default_rng(4)
    t = np.concatenate([_scale_boundaries(), np.exp2(rng.uniform(-40, 12, 50000)).astype(F32),
                        np.array([0.0, -0.0, -1.0, np.inf, -np.inf, 1e-45], F32)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = gq.NVFP4.fp32_to_ue4m3(t.copy())
    assert np.array_equal(ue4m3_byte(t), theirs)
    assert ue4m3_byte(np.array([np.nan], F32))[0] == 0


# --- libggml ----------------------------------------------------------------------------------

@pytest.mark.libggml
@pytest.mark.parametrize("data", ["random", "crafted", "scale_sweep"])
def test_quantize_bytes_match_libggml(lib, data: str) -> None:
    x = {"random": lambda: _random_rows(1), "crafted": _crafted_rows, "scale_sweep": _scale_sweep_rows}[data]()
    with np.errstate(all="ignore"):
        ours = oracle.quantize(x, "nvfp4")
    _assert_same_bytes(ours, lib.quantize(x, "nvfp4"), x)


@pytest.mark.libggml
def test_scale_sweep_reaches_every_encoder_branch(lib) -> None:
    """The sweep is only evidence if libggml's bytes cover the branches: subnormal codes 0..7,
    the 7-clamp (amax/6 in [7.5, 8) * 2^-9 -> 7, not 2^-6's 0x08), carries and 0x7E."""
    x = _scale_sweep_rows()
    theirs = lib.quantize(x, "nvfp4").reshape(-1, 36)[:, :4].reshape(-1)
    amax6 = (np.abs(x.reshape(-1, 16)).max(axis=1) / F32(6)).astype(F32)
    assert set(range(8)) <= set(theirs.tolist()) and 0x7E in theirs and 0x77 in theirs
    clamp = (amax6 >= F32(7.5 * 2.0**-9)) & (amax6 < F32(2.0**-6))
    assert clamp.any() and (theirs[clamp] == 7).all()
    assert not set(range(0x78, 0x7E)) & set(theirs.tolist())


@pytest.mark.libggml
def test_dequantize_matches_libggml(lib) -> None:
    rng = np.random.default_rng(9)
    blobs = [rng.integers(0, 256, (64, lib.row_bytes("nvfp4", K)), dtype=np.uint8)]
    blobs[0][:, 0] = np.arange(64) * 4 + 3
    with np.errstate(all="ignore"):
        blobs += [lib.quantize(_random_rows(1), "nvfp4"), lib.quantize(_crafted_rows(), "nvfp4")]
    for q in blobs:
        _assert_same_f32(oracle.dequantize(q, "nvfp4"), lib.dequantize(q, "nvfp4", K))


# --- properties ---------------------------------------------------------------------------------

def test_decoded_scale_is_half_the_ue4m3_value() -> None:
    """Against an independent decode of the bits (bias 7, 3 mantissa bits), halved; 0 and 0x7F are 0."""
    b = np.arange(256, dtype=np.uint8)
    e, m = (b.astype(int) >> 3) & 0xF, b.astype(int) & 7
    spec = np.where(e == 0, m * 2.0**-9, (1 + m / 8) * 2.0 ** (e - 7)) / 2
    spec[[0, 0x7F]] = 0
    assert np.array_equal(ue4m3_to_fp32_half(b), spec.astype(F32))


@given(hnp.arrays(F32, (2, 64), elements=st.floats(-1e4, 1e4, width=32)))
def test_never_writes_negative_zero_code(x: np.ndarray) -> None:
    q = oracle.quantize(x, "nvfp4").reshape(-1, 36)[:, 4:]
    assert not ((q & 0x0F) == 8).any() and not ((q >> 4) == 8).any()
