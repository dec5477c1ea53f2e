"""Evidence for the non-K GGML block formats (q4_0 .. mxfp4, iq4_nl, iq4_xs, tq1_0, tq2_0).

References: gguf-py (`gguf.quants`), which quantizes Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, TQ1_0,
TQ2_0, MXFP4 bit-exactly like libggml on ordinary input and dequantizes every type here;
libggml itself (through kernels/ggml/libggml.py, when llama-cpp-python is installed) for the
x86 SIMD activation quantizers and the inputs where gguf-py is known to differ from libggml:
  * NaN anywhere in a block (gguf-py's numpy max/argmax/argmin propagate or pick NaN, ggml's
    scalar comparisons skip it or let a later value replace it);
  * blocks of signed zeros (ggml keeps max = +0.0 from its initial value, gguf-py takes the
    -0.0 element, so d's sign bit differs) and, for q4_1/q5_1, blocks of only +inf or -inf
    (ggml's min stays FLT_MAX / max stays -FLT_MAX).
Those inputs are in `_special_blocks` and are checked against libggml only. libggml agreement
for every registered format on ordinary data is tests/test_libggml_agreement.py's job.
Floats are compared as bit patterns (`view(np.uint32)`), NaNs aside where gguf-py is involved.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import oracle
from oracle.ggml import mxfp4 as mxfp4_mod
from oracle.ggml.tables import e8m0_to_fp32_half

gguf_quants = pytest.importorskip("gguf.quants", reason="gguf-py (the gguf package) is the reference here")
from gguf import GGMLQuantizationType  # noqa: E402

F32 = np.float32
GGUF_QUANTIZABLE = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "tq1_0", "tq2_0", "mxfp4"]
GGUF_DEQUANTIZABLE = GGUF_QUANTIZABLE + ["iq4_nl", "iq4_xs"]
MINE = ["q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4"]
VARIANTS = {"q4_0": 8.5, "q5_0": 16.5, "q4_1": 0.5, "q5_1": 0.5}  # formats with .fma/.nofma


def _gtype(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name.split(".")[0].upper()]


def _gguf_quantize(x: np.ndarray, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gguf_quants.quantize(x, _gtype(name))


def _gguf_dequantize(q: np.ndarray, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gguf_quants.dequantize(q, _gtype(name)).astype(F32, copy=False)


def _same_bits(a: np.ndarray, b: np.ndarray, nan_aside: bool = True) -> bool:
    """float32 arrays equal bit for bit; with nan_aside, NaN positions must match, not payloads."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    if a.shape != b.shape:
        return False
    if nan_aside:
        na, nb = np.isnan(a), np.isnan(b)
        return bool(np.array_equal(na, nb) and np.array_equal(a[~na].view(np.uint32), b[~nb].view(np.uint32)))
    return bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def _random_rows(bs: int, seed: int, scales=(1e-30, 1e-6, 1e-2, 1.0, 3e2, 6e4, 1e30)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [(rng.standard_normal((6, 4 * bs)) * s).astype(F32) for s in scales]
    rows.append(rng.uniform(-1, 1, (6, 4 * bs)).astype(F32) * F32(np.finfo(F32).max))
    return np.concatenate(rows).reshape(-1, bs)


def _half_step_rows(bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Blocks whose values sit exactly on a rounding tie of the block's own scale.

    The scale is made a power of two d0 (so 1/d is exact) by pinning the extreme element:
    q4_0 / q5_0 (max = -8*d0 / -16*d0), q4_1 / q5_1 (min 0, max 15*d0 / 31*d0), q8_0
    (amax 127*d0, where x*id lands on k + 0.5: half away and half even disagree), tq (amax d0,
    x = +-d0/2), mxfp4 (midpoints between grid values, ties go to the first index).
    """
    rows = []
    for d0 in (F32(2.0**-4), F32(1.0), F32(2.0**6)):
        for lo, hi, pin in ((-8, 8, -8), (-16, 16, -16), (-127, 127, 127)):
            r = ((rng.integers(lo, hi, bs) + 0.5) * d0).astype(F32)
            r[0] = pin * d0
            rows.append(r)
        for top in (15, 31):
            r = ((rng.integers(0, top, bs) + 0.5) * d0).astype(F32)
            r[0], r[1] = 0, top * d0
            rows.append(r)
        r = (rng.choice([-0.5, 0.5, 0.0, 1.0, -1.0], bs) * d0).astype(F32)
        r[0] = d0
        rows.append(r)
        grid = np.array([0, 1, 2, 3, 4, 6, 8, 12], dtype=F32)
        mids = (grid[:-1] + grid[1:]) / 2
        r = (rng.choice(np.concatenate([mids, -mids]), bs) * d0 / 2).astype(F32)
        r[0] = 12 * d0 / 2
        rows.append(r)
    return rows


def _crafted(bs: int, seed: int = 7) -> np.ndarray:
    """Zero, constant, subnormal, huge, tie, one-sided and half-step blocks (no NaN, no signed-zero-only blocks)."""
    rng = np.random.default_rng(seed)
    big = F32(np.finfo(F32).max)
    rows = [np.zeros(bs, F32)]
    rows += [np.full(bs, F32(v)) for v in (1.5, -3.0, 1e-45, -1e-40, 1.17549435e-38, 65504.0, 1e5, big, -big)]
    r = rng.standard_normal(bs).astype(F32)
    r[3] = np.inf
    rows.append(r)
    r = rng.standard_normal(bs).astype(F32)
    r[-1] = -np.inf
    rows.append(r)
    for first, second in ((4.0, -4.0), (-4.0, 4.0)):  # equal |max| of both signs: the first wins
        r = rng.uniform(-1, 1, bs).astype(F32)
        r[2], r[7] = first, second
        rows.append(r)
    rows.append(np.abs(rng.standard_normal(bs)).astype(F32))
    rows.append(-np.abs(rng.standard_normal(bs)).astype(F32))
    # scales around fp16's and float32's subnormal ranges, and where 1/d or 127/amax overflow
    for s in (1e-42, 1e-39, 1e-38, 2.0**-127, 2.0**-126, 2.0**-125, 3e-37, 4e-37, 1e-30, 1e-7, 1e-5, 1e38):
        rows.append((rng.standard_normal(bs) * s).astype(F32))
    for k in (-3, 0, 2, 5, 20, 100):  # amax just below a power of two (mxfp4's log2f boundary)
        r = (rng.uniform(-1, 1, bs) * 2.0**k).astype(F32)
        r[0] = np.nextafter(F32(2.0**k), F32(0))
        rows.append(r)
    rows += _half_step_rows(bs, rng)
    return np.stack(rows).astype(F32)


def _special_blocks(bs: int, seed: int = 11) -> np.ndarray:
    """Blocks where gguf-py differs from libggml: NaNs, signed-zero-only, all-inf."""
    rng = np.random.default_rng(seed)
    rows = [np.full(bs, F32(-0.0)), np.full(bs, np.nan, F32), np.full(bs, np.inf, F32), np.full(bs, -np.inf, F32)]
    r = np.zeros(bs, F32)
    r[1::2] = -0.0
    rows.append(r)
    r = np.zeros(bs, F32)
    r[0::2] = -0.0
    rows.append(r)
    for pos in (0, 5, bs - 1):
        r = rng.standard_normal(bs).astype(F32)
        r[pos] = np.nan
        rows.append(r)
    r = rng.standard_normal(bs).astype(F32)
    r[-1] = np.array(0xFFC12345, dtype=np.uint32).view(F32)  # a negative NaN with a payload, last
    rows.append(r)
    return np.stack(rows).astype(F32)


# --- registry ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", MINE + [f"{n}.{v}" for n in VARIANTS for v in ("fma", "nofma")] + ["q8_0.x86", "q8_1.x86"])
def test_registered_with_a_ggml_type_name(name: str) -> None:
    fmt = oracle.get_format(name)
    assert fmt.name == name
    assert _gtype(name).name.lower() == name.split(".")[0]
    assert fmt.source.startswith("ggml/src/")


# --- gguf-py agreement --------------------------------------------------------------------

@pytest.mark.parametrize("name", GGUF_QUANTIZABLE)
def test_quantize_matches_gguf_random(name: str) -> None:
    bs = oracle.get_format(name).block_size
    x = _random_rows(bs, seed=1).reshape(-1, 2 * bs)
    assert np.array_equal(oracle.quantize(x, name), _gguf_quantize(x, name))


@pytest.mark.parametrize("name", GGUF_QUANTIZABLE)
def test_quantize_matches_gguf_crafted(name: str) -> None:
    bs = oracle.get_format(name).block_size
    x = _crafted(bs)
    ours, ref = oracle.quantize(x, name), _gguf_quantize(x, name)
    bad = np.nonzero(~(ours == ref).all(axis=1))[0]
    assert bad.size == 0, f"blocks {bad.tolist()} differ from gguf-py"


@pytest.mark.parametrize("name", GGUF_DEQUANTIZABLE)
def test_dequantize_matches_gguf_on_quantized(name: str) -> None:
    bs = oracle.get_format(name).block_size
    x = np.concatenate([_random_rows(bs, seed=2, scales=(1e-6, 1.0, 3e2)), _crafted(bs)])
    q = oracle.quantize(x, name)
    assert _same_bits(oracle.dequantize(q, name), _gguf_dequantize(q, name))


@pytest.mark.parametrize("name", GGUF_DEQUANTIZABLE)
def test_dequantize_matches_gguf_on_random_bytes(name: str) -> None:
    """Every code pattern, and fp16 / e8m0 scale bytes that are inf, NaN, subnormal or zero."""
    fmt = oracle.get_format(name)
    rng = np.random.default_rng(3)
    q = rng.integers(0, 256, (2048, fmt.block_bytes), dtype=np.uint8)
    if name == "mxfp4":
        q[:256, 0] = np.arange(256)
    else:
        at = {"tq1_0": 52, "tq2_0": 64}.get(name, 0)  # where the fp16 d sits
        specials = np.array([0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x0001, 0x83FF, 0x0000, 0x8000, 0x7BFF], dtype="<u2")
        q[: specials.size, at : at + 2] = specials.view(np.uint8).reshape(-1, 2)
    assert _same_bits(oracle.dequantize(q, name), _gguf_dequantize(q, name))


def test_gguf_differs_on_special_blocks_as_documented() -> None:
    """Keeps the module docstring honest: gguf-py really disagrees with the C rule on these blocks."""
    x = _special_blocks(32)
    for name in ("q4_0", "q8_0", "mxfp4"):
        assert not np.array_equal(oracle.quantize(x, name), _gguf_quantize(x, name))


# --- the rounding variants ------------------------------------------------------------------

def _scan_neighbours(name: str, block: np.ndarray, j: int, target: float, span: int = 400) -> np.ndarray:
    """Copies of `block` with x[j] stepped through the `span` floats on each side of `target`."""
    steps = np.arange(-span, span + 1)
    t32 = F32(target)
    bits = t32.view(np.int32) + np.where(t32 >= 0, steps, -steps).astype(np.int32)
    rows = np.repeat(block[None, :], steps.size, axis=0)
    rows[:, j] = bits.astype(np.int32).view(F32)
    return rows


def _crossing_rows(name: str) -> np.ndarray:
    """Blocks with x[j] stepped through floats where `x*id + c` or `(x-min)*id + c` nears an integer.

    q4_0 / q5_0: x*id near n - 8.5 (n - 16.5), where |x*id| exceeds the sum, so the unfused
    product's rounding error is coarser than the sum's grid. q4_1 / q5_1: with min = 0 the
    only such place is (x-min)*id just under 0.5 (sum just under 1, one binade up), so x runs
    around d/2 for twenty different scales.
    """
    rng = np.random.default_rng(5)
    j = 9
    rows = []
    if name in ("q4_0", "q5_0"):
        half = 8 if name == "q4_0" else 16
        block = rng.uniform(-1, 1, 32).astype(F32)
        block[0] = F32(-1.37)  # the largest |x|: d = -1.37 / -half
        d = float(F32(F32(-1.37) / F32(-half)))
        for n in range(1, 2 * half - 1):
            rows.append(_scan_neighbours(name, block, j, (n - VARIANTS[name]) * d))
    else:
        top = 15 if name == "q4_1" else 31
        for mx in rng.uniform(1.0, 2.0, 20).astype(F32):
            block = rng.uniform(0, 1, 32).astype(F32)
            block[0], block[1] = F32(0), mx
            rows.append(_scan_neighbours(name, block, j, 0.5 * float(mx) / top))
    return np.concatenate(rows)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_and_unfused_quantizers_really_differ(name: str) -> None:
    """Near a code boundary `fl(fl(x*id) + c)` and `fl(x*id + c)` truncate to different codes.

    The unfused rounding is the one gguf-py (numpy, two roundings) and x86-64 ggml-base use,
    so it must match gguf-py on every row while the fused one must not.
    """
    x = _crossing_rows(name)
    plain, fused = oracle.quantize(x, f"{name}.nofma"), oracle.quantize(x, f"{name}.fma")
    assert np.array_equal(oracle.quantize(x, name), plain)
    assert np.array_equal(plain, _gguf_quantize(x, name))
    differs = ~(plain == fused).all(axis=1)
    assert differs.any()
    # the fused code is the truncation of the single-rounded value, one below the unfused one
    dq_plain, dq_fused = oracle.dequantize(plain[differs], name), oracle.dequantize(fused[differs], name)
    assert np.all(np.abs(dq_plain - dq_fused).max(axis=1) > 0)


def test_affine_dequant_product_is_exact_so_fusing_changes_nothing() -> None:
    """q4_1/q5_1's `code*d + m` has one dequantizer for both variants because code*d is exact.

    Checked for every code 0..31 and every finite fp16 d: the float32 product equals the
    float64 one, so a fused `code*d + m` rounds exactly as the unfused sum does.
    """
    d = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view("<f2").astype(F32)
    d = d[np.isfinite(d)]
    codes = np.arange(32, dtype=F32)
    p32 = (codes[:, None] * d[None, :]).astype(np.float64)
    p64 = codes.astype(np.float64)[:, None] * d.astype(np.float64)[None, :]
    assert np.array_equal(p32, p64)


def test_q8_0_x86_rounds_half_to_even_where_reference_rounds_away() -> None:
    """With amax = 127*2^-4 both paths get the exact scale 16, so x = (k + 0.5)/16 is a tie."""
    rng = np.random.default_rng(8)
    k = rng.integers(-120, 120, (64, 32))
    x = ((k + 0.5) / 16).astype(F32)
    x[:, 0] = F32(127 / 16)
    ref, simd = oracle.quantize(x, "q8_0"), oracle.quantize(x, "q8_0.x86")
    codes_ref = ref.reshape(64, 34)[:, 3:].view(np.int8).astype(int)
    codes_simd = simd.reshape(64, 34)[:, 3:].view(np.int8).astype(int)
    t = k[:, 1:] + 0.5
    assert np.array_equal(codes_ref, (np.sign(t) * np.floor(np.abs(t) + 0.5)).astype(int))
    assert np.array_equal(codes_simd, np.rint(t).astype(int))
    assert np.array_equal(ref, _gguf_quantize(x, "q8_0"))
    q1_ref, q1_simd = oracle.quantize(x, "q8_1"), oracle.quantize(x, "q8_1.x86")
    assert np.array_equal(q1_ref.reshape(64, 36)[:, 4:], ref.reshape(64, 34)[:, 2:])
    assert np.array_equal(q1_simd.reshape(64, 36)[:, 4:], simd.reshape(64, 34)[:, 2:])


# --- mxfp4's log2f --------------------------------------------------------------------------

def test_mxfp4_log2f_floor_matches_libm_near_powers_of_two() -> None:
    """floorf(log2f(amax)) decides the exponent; check it against glibc's log2f at its boundaries."""
    path = ctypes.util.find_library("m")
    if path is None:
        pytest.skip("no C math library to compare log2f with")
    libm = ctypes.CDLL(path)
    libm.log2f.restype, libm.log2f.argtypes = ctypes.c_float, [ctypes.c_float]
    xs = []
    for k in range(-148, 128):
        p = np.array([2.0**k], dtype=F32).view(np.int32)[0]
        xs.append(np.arange(p - 48, p + 4, dtype=np.int32).view(F32))
    x = np.concatenate(xs)
    x = x[np.isfinite(x) & (x > 0)]
    ref = np.array([libm.log2f(float(v)) for v in x], dtype=F32)
    assert np.array_equal(np.floor(mxfp4_mod._log2f(x)), np.floor(ref))
    amax = x.astype(F32)
    e_ref = ((np.floor(ref) - 2 + 127).astype(np.int64) & 0xFF).astype(np.uint8)
    assert np.array_equal(mxfp4_mod.exponent_byte(amax), e_ref)


def test_e8m0_half_scale_is_exact() -> None:
    e = np.arange(256)
    want = np.ldexp(np.ones(256), e - 128).astype(np.float64)
    assert np.array_equal(e8m0_to_fp32_half(e).astype(np.float64), want)


# --- properties -------------------------------------------------------------------------------

def _blocks(draw, bs: int, n_blocks: int, bound: float) -> np.ndarray:
    scale = draw(st.sampled_from([1e-20, 1e-4, 1.0, 50.0, bound]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n_blocks, bs)) * scale).astype(F32)
    mask = rng.random(x.shape) < draw(st.sampled_from([0.0, 0.3]))
    x[mask] = 0
    return np.clip(x, -bound, bound).astype(F32)


@st.composite
def _fmt_and_blocks(draw, names, bound: float = 1e4):
    name = draw(st.sampled_from(names))
    bs = oracle.get_format(name).block_size
    return name, _blocks(draw, bs, draw(st.integers(1, 3)), bound)


ALL_MINE = MINE + ["q4_1.fma", "q5_0.fma", "q5_1.fma", "q8_0.x86", "q8_1.x86"]


@given(_fmt_and_blocks(ALL_MINE))
def test_sizes(case) -> None:
    name, x = case
    fmt = oracle.get_format(name)
    q = oracle.quantize(x.reshape(1, -1), name)
    assert q.dtype == np.uint8 and q.shape == (1, x.shape[0] * fmt.block_bytes)
    y = oracle.dequantize(q, name)
    assert y.dtype == F32 and y.shape == (1, x.size)


@given(_fmt_and_blocks(["q8_0", "q8_0.x86", "q8_1", "q8_1.x86"]))
def test_q8_codes_stay_within_127(case) -> None:
    """For finite input with a normal-range amax the codes are in [-127, 127], never -128."""
    name, x = case
    off = 4 if name.startswith("q8_1") else 2
    q = oracle.quantize(x, name)
    amax = np.abs(x).max(axis=1)
    codes = q[:, off:].view(np.int8)[amax > 1e-30]
    assert codes.size == 0 or (codes.min() >= -127 and codes.max() <= 127)


@given(_fmt_and_blocks(["tq1_0", "tq2_0"]))
def test_ternary_digits_are_trits(case) -> None:
    """Every decoded value is -d, 0 or +d (tq2_0's unused code 3 = +2d never appears)."""
    name, x = case
    y = oracle.dequantize(oracle.quantize(x, name), name)
    at = 52 if name == "tq1_0" else 64
    d = oracle.quantize(x, name)[:, at : at + 2].copy().view("<f2").astype(F32)
    assert np.all((y == 0) | (y == d) | (y == -d))


@given(_fmt_and_blocks(["mxfp4"], bound=1e30))
def test_mxfp4_never_writes_negative_zero_code(case) -> None:
    _, x = case
    q = oracle.quantize(x, "mxfp4")[:, 1:]
    assert not np.any(((q & 0x0F) == 8) | ((q >> 4) == 8))


IDEMPOTENT = ["q4_0", "q5_0", "q8_0", "q8_0.x86", "q8_1", "tq1_0", "tq2_0", "mxfp4"]


@given(_fmt_and_blocks(IDEMPOTENT))
def test_requantizing_dequantized_values_is_a_fixed_point(case) -> None:
    """dequant(quant(dequant(q))) == dequant(q) for the symmetric formats.

    Their grids are {k*d}: the largest |value| re-derives the same fp16 d (q4_0/q5_0 divide
    -8*d by -8 exactly; q8 and tq recover d from 127*d or d; mxfp4's largest code is 8 or 12,
    which gives back the same exponent) and every value then sits exactly on its own code.
    Not asserted for q4_1/q5_1: code*d + m is rounded to float32, and when the block's spread
    is near m's own resolution (x = 1 + 1e-7*N(0, 1) does it for q4_1) the dequantized values
    leave the grid and requantize to other codes. Nor for iq4_nl/iq4_xs, whose weighted scale
    search re-optimizes the scale for the new values and usually picks another.
    Compared as values: when d underflows fp16 to zero, (code - 8)*0 gives zeros of either sign.
    """
    name, x = case
    y = oracle.dequantize(oracle.quantize(x, name), name)
    y2 = oracle.dequantize(oracle.quantize(y, name), name)
    assert np.array_equal(y, y2)


# --- libggml (when llama-cpp-python is installed) ------------------------------------------

@pytest.fixture(scope="module")
def libggml():
    """libggml in a worker process (tests/kernel_calls.py): a fault in it fails a test, not the run."""
    from tests.kernel_calls import libggml

    return libggml()


@pytest.mark.libggml
@pytest.mark.parametrize("name", ["q8_0", "q8_1"])
def test_x86_variant_matches_cpu_backend_from_float(libggml, name: str) -> None:
    bs = 32
    x = np.concatenate([_random_rows(bs, seed=9), _crafted(bs), _special_blocks(bs)])
    ours = oracle.quantize(x, f"{name}.x86")
    theirs = np.asarray(libggml.from_float_cpu(x, name)).reshape(ours.shape)
    bad = np.nonzero(~(ours == theirs).all(axis=1))[0]
    assert bad.size == 0, f"blocks {bad.tolist()} differ from ggml-cpu's from_float"


@pytest.mark.libggml
@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "tq1_0", "tq2_0", "mxfp4", "iq4_nl", "iq4_xs"])
def test_crafted_and_special_blocks_match_libggml(libggml, name: str) -> None:
    """The inputs gguf-py cannot referee (NaN, signed zeros, all-inf), plus the crafted set."""
    bs = oracle.get_format(name).block_size
    x = np.concatenate([_crafted(bs), _special_blocks(bs)])
    ours = oracle.quantize(x, name)
    theirs = np.asarray(libggml.quantize(x, name)).reshape(ours.shape)
    bad = np.nonzero(~(ours == theirs).all(axis=1))[0]
    assert bad.size == 0, f"blocks {bad.tolist()} differ from ggml_quantize_chunk"
    y = np.asarray(libggml.dequantize(theirs, name, x.shape[1])).reshape(x.shape)
    assert _same_bits(oracle.dequantize(theirs, name), y, nan_aside=False)
