"""Evidence for oracle.rounding: every mode against the C library or the C code it models.

The references are the real thing, not a second Python model: glibc's `fmaf`, `roundf`,
`rintf`, `truncf`, `floorf` and GCC's float-to-integer casts. A small C helper that loops each
function over arrays is compiled at test time with the system `cc` into a temporary folder, so
millions of inputs take seconds. Without a compiler the libm functions are called per element
through ctypes on a smaller sample, and the cases that need compiled C code are skipped.

Cases are chosen where roundings go wrong: random bit patterns (every exponent, subnormals,
inf, NaN, signed zeros), exact and near cancellation, exact ties at float32 precision, sums
that float64 rounds onto a float32 tie (the double-rounding trap), and the overflow and
subnormal boundaries. Results are compared as bit patterns; two NaNs count as equal.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from oracle import rounding

_LIBM_C = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

void v_fmaf(const float *a, const float *b, const float *c, float *o, long n)
{ for (long i = 0; i < n; i++) o[i] = fmaf(a[i], b[i], c[i]); }
void v_roundf(const float *x, float *o, long n) { for (long i = 0; i < n; i++) o[i] = roundf(x[i]); }
void v_rintf(const float *x, float *o, long n) { for (long i = 0; i < n; i++) o[i] = rintf(x[i]); }
void v_truncf(const float *x, float *o, long n) { for (long i = 0; i < n; i++) o[i] = truncf(x[i]); }
void v_floor_plus_half(const float *x, float *o, long n)
{ for (long i = 0; i < n; i++) o[i] = floorf(x[i] + 0.5f); }
/* the magic-number rounding of ggml-quants.c nearest_int, without its range assert */
void v_nearest_int(const float *x, int32_t *o, long n)
{
    for (long i = 0; i < n; i++) {
        float v = x[i] + 12582912.f;
        int32_t bits;
        memcpy(&bits, &v, sizeof bits);
        o[i] = (bits & 0x007fffff) - 0x00400000;
    }
}
"""

# Out-of-range float-to-integer casts are undefined in C; these pin what GCC emits on x86-64.
_CAST_C = r"""
#include <stdint.h>
void v_to_i8(const float *x, int8_t *o, long n) { for (long i = 0; i < n; i++) o[i] = (int8_t)x[i]; }
void v_to_i16(const float *x, int16_t *o, long n) { for (long i = 0; i < n; i++) o[i] = (int16_t)x[i]; }
void v_to_i32(const float *x, int32_t *o, long n) { for (long i = 0; i < n; i++) o[i] = (int32_t)x[i]; }
"""

_FALLBACK_N = 20_000  # per-element ctypes calls without a compiler: keep it to a second or so

F32 = np.float32


def _build(src: str, out: Path, flags: list[str]) -> ctypes.CDLL:
    c = out.with_suffix(".c")
    c.write_text(src)
    subprocess.run(["cc", "-shared", "-fPIC", *flags, "-o", str(out), str(c), "-lm"], check=True)
    return ctypes.CDLL(str(out))


@pytest.fixture(scope="module")
def clib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL | None:
    """The libm loop helper, or None where there is no C compiler."""
    if shutil.which("cc") is None:
        return None
    # -fno-builtin: call glibc's functions rather than GCC's inline expansions of them
    return _build(_LIBM_C, tmp_path_factory.mktemp("clib") / "libround.so", ["-O2", "-fno-builtin"])


@pytest.fixture(scope="module")
def casts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ctypes.CDLL]:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build the GCC cast reference")
    d = tmp_path_factory.mktemp("casts")
    return {opt: _build(_CAST_C, d / f"libcast{opt}.so", [opt]) for opt in ("-O0", "-O2")}


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _call(lib: ctypes.CDLL, fn: str, out_dtype: type, *args: np.ndarray) -> np.ndarray:
    args = tuple(np.ascontiguousarray(a, dtype=F32) for a in args)
    out = np.empty(args[0].shape, dtype=out_dtype)
    getattr(lib, fn)(*(_ptr(a) for a in args), _ptr(out), ctypes.c_long(out.size))
    return out


def _libm_per_element(fn: str, *args: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fallback: the libm function called once per element on a fixed subsample."""
    libm = ctypes.CDLL("libm.so.6")
    f = getattr(libm, fn)
    f.restype = ctypes.c_float
    f.argtypes = [ctypes.c_float] * len(args)
    idx = np.random.default_rng(99).choice(args[0].size, min(_FALLBACK_N, args[0].size), replace=False)
    sub = tuple(np.asarray(a, dtype=F32)[idx] for a in args)
    out = np.array([f(*(float(a[i]) for a in sub)) for i in range(idx.size)], dtype=F32)
    return out, *sub


def _reference(clib: ctypes.CDLL | None, fn: str, *args: np.ndarray) -> tuple[np.ndarray, ...]:
    """(C result, inputs it was computed on): all inputs with the helper, a sample without."""
    if clib is None:
        return _libm_per_element(fn, *args)
    return _call(clib, "v_" + fn, F32, *args), *args


def assert_same_f32(got: np.ndarray, want: np.ndarray, *inputs: np.ndarray) -> None:
    got = np.asarray(got, dtype=F32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        i = np.flatnonzero(~same)[:5]
        detail = [tuple(hex(int(np.asarray(x, dtype=F32).view(np.uint32)[j])) for x in inputs) for j in i]
        raise AssertionError(
            f"{(~same).sum()} of {same.size} differ; first inputs {detail}: "
            f"got {got[i].tolist()}, want {want[i].tolist()}")


# ---- input generators -------------------------------------------------------------------

def random_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform 32-bit patterns: every exponent equally, so subnormals, inf and NaN all occur."""
    return rng.integers(0, 2**32, size=n, dtype=np.uint32).view(F32)


def with_exponent(rng: np.random.Generator, e: np.ndarray) -> np.ndarray:
    """Random sign and mantissa with the biased exponent field e (clipped to 0..254)."""
    e = np.clip(e, 0, 254).astype(np.uint32)
    sign = rng.integers(0, 2, size=e.shape, dtype=np.uint32) << 31
    man = rng.integers(0, 1 << 23, size=e.shape, dtype=np.uint32)
    return (sign | (e << 23) | man).view(F32)


def same_scale(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a*b and c of comparable size, so that both contribute to the rounded sum."""
    ea = rng.integers(90, 165, size=n)
    eb = rng.integers(90, 165, size=n)
    ec = ea + eb - 127 + rng.integers(-30, 31, size=n)
    return with_exponent(rng, ea), with_exponent(rng, eb), with_exponent(rng, ec)


def cancelling(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c = -fl(a*b) and its neighbours up to 3 ulps away: the result is the product's error."""
    a, b, _ = same_scale(rng, n)
    c = -(a * b)
    for _ in range(3):
        step = rng.integers(-1, 2, size=n)
        c = np.where(step > 0, np.nextafter(c, F32(np.inf)), np.where(step < 0, np.nextafter(c, F32(-np.inf)), c))
    return a, b, c.astype(F32)


def ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c chosen so that a*b + c is exactly halfway between two float32 values.

    Split the exact product |p| = hi + lo at float32 precision (hi a multiple of u = ulp(p)).
    Then c = sign(p) * (u/2 - lo) has at most 24 significant bits, so it is a float32, and
    p + c = sign(p) * (hi + u/2). Half the cases are nudged one ulp of c off the tie.
    """
    a, b, _ = same_scale(rng, n)
    p = a.astype(np.float64) * b.astype(np.float64)
    big = np.abs(p)
    _, e = np.frexp(big)
    u = np.ldexp(1.0, e - 24)
    hi = np.floor(big / u) * u
    c64 = np.sign(p) * (u / 2 - (big - hi))
    c = c64.astype(F32)
    keep = (c.astype(np.float64) == c64) & np.isfinite(p) & (big > 2.0**-100) & (big < 2.0**100)
    a, b, c = a[keep], b[keep], c[keep]
    nudge = rng.integers(-1, 2, size=c.size)
    c = np.where(nudge > 0, np.nextafter(c, F32(np.inf)), np.where(nudge < 0, np.nextafter(c, F32(-np.inf)), c))
    return a, b, c.astype(F32)


def double_rounding_traps(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|a*b| = (u/2)(1 - 2^-2k) with u = ulp(c): just short of a float32 tie.

    For k >= 15 the shortfall is below float64 precision at c's magnitude, so the naive
    `float(float64(a)*b + c)` lands exactly on the tie and rounds to even: wrong half the time.
    """
    ec = rng.integers(30, 221, size=n)
    c = with_exponent(rng, ec)
    k = rng.integers(12, 24, size=n)
    total = ec - 151  # log2(u/2) with u = 2^(ec - 150)
    ea = total // 2
    sign = np.where(rng.integers(0, 2, size=n) == 1, -1.0, 1.0)
    a = (sign * np.ldexp(1.0 - np.ldexp(1.0, -k), ea)).astype(F32)
    b = np.ldexp(1.0 + np.ldexp(1.0, -k), total - ea).astype(F32)
    return a, b, c


def boundaries(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Products near FLT_MAX with c near +-FLT_MAX, and products near the subnormal range."""
    fmax = np.finfo(F32).max
    ea = rng.integers(127 + 50, 127 + 78, size=n)
    a = with_exponent(rng, ea)
    b = with_exponent(rng, 127 + 127 - (ea - 127) + rng.integers(-1, 2, size=n))
    near_max = np.array([fmax, -fmax, np.nextafter(fmax, F32(0)), -np.nextafter(fmax, F32(0)),
                         F32(2.0**127), F32(-2.0**127), F32(0)], dtype=F32)
    with np.errstate(over="ignore"):
        c_hi = np.where(rng.integers(0, 2, size=n) == 1, rng.choice(near_max, size=n), -(a * b))
    ea = rng.integers(127 - 80, 127 - 40, size=n)
    a2 = with_exponent(rng, ea)
    b2 = with_exponent(rng, 127 - 140 - (ea - 127) + rng.integers(-12, 13, size=n))
    sub = with_exponent(rng, rng.integers(0, 3, size=n))  # subnormal and the smallest normals
    with np.errstate(under="ignore"):
        c_lo = np.where(rng.integers(0, 2, size=n) == 1, sub, -(a2 * b2))
    return np.concatenate([a, a2]), np.concatenate([b, b2]), np.concatenate([c_hi, c_lo]).astype(F32)


def subnormal_ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a*b = m * 2^-150 exactly (m odd: a tie at the subnormal spacing 2^-149), c a subnormal."""
    m = (rng.integers(0, 1 << 22, size=n) * 2 + 1).astype(np.float64)
    t = rng.integers(0, 40, size=n)
    a = np.ldexp(m, -75 - t).astype(F32)
    b = np.ldexp(1.0, -75 + t).astype(F32)
    c = with_exponent(rng, np.zeros(n, dtype=np.int64))
    c = np.where(rng.integers(0, 4, size=n) == 0, F32(0), c).astype(F32)
    return a, b, c


FMA_CASES = {
    "random_bits": lambda rng, n: (random_bits(rng, n), random_bits(rng, n), random_bits(rng, n)),
    "same_scale": same_scale,
    "cancelling": cancelling,
    "ties": ties,
    "double_rounding_traps": double_rounding_traps,
    "boundaries": boundaries,
    "subnormal_ties": subnormal_ties,
}


@pytest.mark.parametrize("case", sorted(FMA_CASES))
def test_fmaf_matches_libm(clib: ctypes.CDLL | None, case: str) -> None:
    rng = np.random.default_rng(sorted(FMA_CASES).index(case) + 1)
    a, b, c = FMA_CASES[case](rng, 1_000_000)
    want, a, b, c = _reference(clib, "fmaf", a, b, c)
    with np.errstate(all="ignore"):
        got = rounding.fmaf(a, b, c)
    assert_same_f32(got, want, a, b, c)


def test_fmaf_cases_hit_what_they_aim_at() -> None:
    """The generators really build ties and traps: checked exactly with Python fractions."""
    from fractions import Fraction

    rng = np.random.default_rng(7)
    a, b, c = ties(rng, 200)
    exact = [Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)) for x, y, z in zip(a, b, c)]
    r = np.array([float(v) for v in exact]).astype(F32)  # float() of a Fraction is correctly rounded
    lo = np.where(np.array([Fraction(float(v)) for v in r]) > np.array(exact), np.nextafter(r, F32(-np.inf)), r)
    hi = np.nextafter(lo, F32(np.inf))
    n_ties = sum(2 * e == Fraction(float(x)) + Fraction(float(y)) for e, x, y in zip(exact, lo, hi))
    assert n_ties > 40  # about a third of the cases are left exactly on the tie
    a, b, c = double_rounding_traps(rng, 400)
    with np.errstate(all="ignore"):
        naive = (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(F32)
    assert (naive != rounding.fmaf(a, b, c)).sum() > 50  # the trap catches the naive formula


# ---- rounding to integers ---------------------------------------------------------------

def _rounding_inputs() -> np.ndarray:
    rng = np.random.default_rng(11)
    n = np.arange(-(1 << 23), 1 << 23, 37, dtype=np.float64)
    specials = np.array([0.49999997, -0.49999997, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.0, -0.0,
                         8388607.5, -8388607.5, 8388608.0, 2.0**31, -(2.0**31), 3e38, -3e38,
                         np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45], dtype=F32)
    wide = rng.uniform(-100, 100, 500_000).astype(F32)
    return np.concatenate([random_bits(rng, 2_000_000), (n + 0.5).astype(F32), n.astype(F32),
                           np.nextafter((n + 0.5).astype(F32), F32(0)), wide, specials])


INT_ROUNDINGS = {
    "half_away": ("roundf", rounding.half_away),
    "rne": ("rintf", rounding.rne),
    "trunc": ("truncf", rounding.trunc),
    "floor_plus_half": ("floor_plus_half", rounding.floor_plus_half),
}


@pytest.mark.parametrize("name", sorted(INT_ROUNDINGS))
def test_rounding_matches_c(clib: ctypes.CDLL | None, name: str) -> None:
    cname, fn = INT_ROUNDINGS[name]
    x = _rounding_inputs()
    if clib is None and cname == "floor_plus_half":
        pytest.skip("floorf(x + 0.5f) needs the compiled helper (no C compiler)")
    want, x = _reference(clib, cname, x)
    with np.errstate(all="ignore"):
        assert_same_f32(fn(x), want, x)


def test_half_away_named_cases() -> None:
    """Values where `floor(|x| + 0.5)` and half-to-even go wrong, as C99 roundf defines them."""
    x = np.array([0.49999997, -0.49999997, -2.5, 2.5, -0.5, 0.5, -0.0, 0.0], dtype=F32)
    got = rounding.half_away(x)
    want = np.array([0.0, -0.0, -3.0, 3.0, -1.0, 1.0, -0.0, 0.0], dtype=F32)
    assert_same_f32(got, want, x)
    assert np.isnan(rounding.half_away(np.array([np.nan], dtype=F32))).all()
    assert rounding.floor_plus_half(np.array([0.49999997], dtype=F32))[0] == 1.0  # the classic bug


def test_nearest_int_matches_c_trick(clib: ctypes.CDLL | None) -> None:
    if clib is None:
        pytest.skip("the nearest_int trick needs the compiled helper (no C compiler)")
    x = _rounding_inputs()
    want = _call(clib, "v_nearest_int", np.int32, x)
    with np.errstate(all="ignore"):
        got = rounding.nearest_int(x)
    assert np.array_equal(got, want)
    inside = np.abs(x) <= 4194303.0  # ggml asserts this range; there the trick is plain RNE
    assert np.array_equal(got[inside], np.rint(x[inside]).astype(np.int32))


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_c_float_to_int_matches_gcc(casts: dict[str, ctypes.CDLL], bits: int) -> None:
    x = _rounding_inputs()
    extra = np.array([127.9, 128.0, -128.9, -129.0, 255.0, 256.0, 32767.5, 32768.0, -32769.0,
                      2147483520.0, 2147483648.0, -2147483648.0, -2147483904.0], dtype=F32)
    with np.errstate(all="ignore"):
        x = np.concatenate([x, extra, x * F32(1e-3)])
        got = rounding.c_float_to_int(x, bits)
    dtype = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    for opt, lib in casts.items():
        want = _call(lib, f"v_to_i{bits}", dtype, x).astype(np.int32)
        bad = np.flatnonzero(got != want)[:5]
        assert bad.size == 0, f"{opt}: x={x[bad].tolist()} got {got[bad].tolist()} want {want[bad].tolist()}"
