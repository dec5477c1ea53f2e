"""Evidence for oracle.floats: every code decoded, and encoding checked against the spec.

The reference here is written from the format definitions, at the bit level, with integers
only, so it shares nothing with ml_dtypes or numpy's float16 conversion that the codecs use:
  value = (-1)^s * 2^(e - bias) * (1 + m/2^M) for a normal code, 2^(1 - bias) * m/2^M for e = 0.
Formats and their special codes:
  fp16 (IEEE 754 binary16, E5 M10 bias 15) and bf16 (E8 M7 bias 127): IEEE specials.
  e5m2 (OCP 8-bit FP spec, E5 M2 bias 15): IEEE-like, inf and NaN at exponent 31.
  e4m3fn (OCP 8-bit FP spec, E4 M3 bias 7): no inf; only S.1111.111 (0x7f, 0xff) is NaN.
  e8m0 (OCP MX spec, scale format): no sign, no zero, no subnormals: 2^(code - 127), 0xff NaN.
  e2m1 (OCP MX spec, FP4, E2 M1 bias 1): no inf, no NaN; largest value 6.

Rounding reference: round to nearest, ties to even, done on the float32 significand as an
integer (shift right, compare the dropped bits with half), with the overflow policy that
oracle/floats.py documents. fp16 and bf16 are checked over every float32 bit pattern whose
exponent can round to something other than zero or infinity, and on a sample elsewhere.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from oracle import floats

# numpy warns when the codecs cast inf/NaN/out-of-range values, which these tests do on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning",
                                        "ignore:invalid value encountered in cast:RuntimeWarning")

# name: (exponent bits, mantissa bits, bias, signed)
SPEC = {
    "fp16": (5, 10, 15, True),
    "bf16": (8, 7, 127, True),
    "e4m3fn": (4, 3, 7, True),
    "e5m2": (5, 2, 15, True),
    "e8m0": (8, 0, 127, False),
    "e2m1": (2, 1, 1, True),
}
# overflow policy of the table in oracle/floats.py: the positive code a too-large value gets
OVERFLOW_CODE = {"fp16": 0x7C00, "bf16": 0x7F80, "e5m2": 0x7C, "e4m3fn": 0x7F, "e2m1": 0x7}
F32 = np.float32


def spec_decode(codes: np.ndarray, name: str) -> np.ndarray:
    """The value of each code from the format definition, as float64 (exact for all formats)."""
    E, M, bias, signed = SPEC[name]
    c = np.asarray(codes, dtype=np.int64)
    sign = np.where(signed & ((c >> (E + M)) & 1 == 1), -1.0, 1.0)
    e = (c >> M) & ((1 << E) - 1)
    m = c & ((1 << M) - 1)
    if name == "e8m0":
        return np.where(c == 0xFF, np.nan, np.ldexp(1.0, (c - bias).astype(np.int32)))
    normal = np.ldexp(1.0 + m / (1 << M), (e - bias).astype(np.int32))
    sub = np.ldexp(m / (1 << M), 1 - bias)
    v = sign * np.where(e == 0, sub, normal)
    top = e == (1 << E) - 1
    if name in ("fp16", "bf16", "e5m2"):
        v = np.where(top, np.where(m == 0, sign * np.inf, np.nan), v)
    elif name == "e4m3fn":
        v = np.where(top & (m == (1 << M) - 1), np.nan, v)
    return v


def n_codes(name: str) -> int:
    return floats.FORMATS[name].n_codes


def assert_same_f32(got: np.ndarray, want: np.ndarray) -> None:
    got, want = np.asarray(got, dtype=F32), np.asarray(want, dtype=F32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)[:5]
    assert bad.size == 0, f"at {bad.tolist()}: got {got[bad].tolist()}, want {want[bad].tolist()}"


@pytest.mark.parametrize("name", sorted(SPEC))
def test_decode_every_code(name: str) -> None:
    codes = np.arange(n_codes(name))
    want = spec_decode(codes, name)
    assert np.array_equal(want.astype(F32).astype(np.float64), want, equal_nan=True)  # float32 holds them all
    assert_same_f32(floats.decode(codes, name), want.astype(F32))
    assert_same_f32(floats.all_values(name), want.astype(F32))


def test_decode_special_codes() -> None:
    """The special codes each spec names, spelled out."""
    v = {n: floats.all_values(n) for n in SPEC}
    assert np.isnan(v["e4m3fn"]).sum() == 2 and np.isnan(v["e4m3fn"][[0x7F, 0xFF]]).all()
    assert v["e4m3fn"][0x7E] == 448 and not np.isinf(v["e4m3fn"]).any()
    assert v["e5m2"][0x7C] == np.inf and v["e5m2"][0x7B] == 57344 and np.isnan(v["e5m2"][0x7D:0x80]).all()
    assert np.isnan(v["e8m0"]).sum() == 1 and np.isnan(v["e8m0"][0xFF]) and not (v["e8m0"][:0xFF] <= 0).any()
    assert v["e8m0"][0] == 2.0**-127 and v["e8m0"][254] == 2.0**127
    assert v["e2m1"].tolist()[:8] == [0, 0.5, 1, 1.5, 2, 3, 4, 6] and np.signbit(v["e2m1"][8])
    assert v["fp16"][0x7BFF] == 65504 and v["fp16"][1] == 2.0**-24
    assert v["bf16"][1] == 2.0**-133 and v["bf16"][0x7F80] == np.inf


# ---- encoding -----------------------------------------------------------------------------

def spec_round_chunk(exp_field: int, man: np.ndarray, name: str) -> np.ndarray:
    """Positive codes for the float32 values 2^(exp_field-127) * 1.man (or subnormal), RNE.

    The float32 significand m (24 bits with the hidden one) is shifted right by s, where 2^s
    is the target's quantum at this exponent measured in float32 units; the dropped bits are
    compared with half a quantum. Counting the quanta from the bottom of the target's lowest
    binade gives the code directly, because codes of a binary float are consecutive in value.
    """
    E, M, bias, _ = SPEC[name]
    m = man.astype(np.int32) | (np.int32(exp_field > 0) << 23)
    e_eff = max(exp_field, 1)
    s = max(23 - M, 151 - bias - M - e_eff)
    if s > 25:  # m < 2^24 <= half a quantum: everything rounds to zero
        n = np.zeros_like(m)
    else:
        q = m >> s
        r = m & ((1 << s) - 1)
        half = 1 << (s - 1)
        n = q + ((r > half) | ((r == half) & ((q & 1) == 1)))
    code = ((max(e_eff - 127 + bias, 1) - 1) << M) + n
    return np.minimum(code, OVERFLOW_CODE[name])


def spec_e8m0_chunk(exp_field: int, man: np.ndarray) -> np.ndarray:
    """e8m0 as floats.py documents it (the OCP MX value set, round to nearest in value): a
    normal float32 gets its exponent, plus one if the significand is at least 1.5 (the larger
    power at the midpoint); 1.5 * 2^127 and up give NaN. A float32 subnormal goes to the nearer
    of 2^-127 (code 0, also for everything below it: no zero) and 2^-126 (code 1), the midpoint
    1.5 * 2^-127 going up; zero gives NaN."""
    if exp_field == 0:
        return np.where(man == 0, 0xFF, np.where(man >= (3 << 21), 1, 0)).astype(np.int32)
    code = exp_field + (man >= (1 << 22)).astype(np.int32)
    return np.where(code > 254, 0xFF, code).astype(np.int32)


def expected_chunk(exp_field: int, man: np.ndarray, name: str) -> np.ndarray:
    if name == "e8m0":
        return spec_e8m0_chunk(exp_field, man)
    return spec_round_chunk(exp_field, man, name)


def chunk_values(exp_field: int, man: np.ndarray, negative: bool = False) -> np.ndarray:
    bits = (np.uint32(negative) << 31) | (np.uint32(exp_field) << 23) | man.astype(np.uint32)
    return bits.view(F32)


def signed_expected(name: str, pos_codes: np.ndarray, negative: bool) -> np.ndarray:
    E, M, _, signed = SPEC[name]
    if not negative:
        return pos_codes
    if not signed:  # e8m0: every negative value is NaN, including -0
        return np.full_like(pos_codes, 0xFF)
    return pos_codes | (1 << (E + M))


def active_exponents(name: str) -> range:
    """float32 exponent fields where values neither all round to zero nor all overflow."""
    E, M, bias, _ = SPEC[name]
    lo = 127 + (1 - bias - M) - 2  # below half the smallest subnormal
    hi = 127 + ((1 << E) - 1 - bias) + 1  # past the top binade
    return range(max(lo, 0), min(hi, 254) + 1)


ALL_MAN = np.arange(1 << 23, dtype=np.uint32)
# Every 11-bit top of the mantissa with six tails for the low 12 bits (zero, one, all ones, the
# half point and around it). A target with M <= 10 mantissa bits drops at least 13 bits, so its
# half bit lies in the top 11 and the dropped bits below it are either enumerated or one of the
# tails: every round-down / tie / round-up decision occurs, at every exponent.
STRUCT_MAN = ((np.arange(1 << 11, dtype=np.uint32)[:, None] << 12)
              | np.array([0, 1, 0x7FF, 0x800, 0x801, 0xFFF], dtype=np.uint32)).ravel()


def check_chunk(name: str, exp_field: int, man: np.ndarray) -> None:
    want_pos = expected_chunk(exp_field, man, name)
    for negative in (False, True):
        got = floats.encode(chunk_values(exp_field, man, negative), name)
        if name == "e2m1":
            got = got & np.uint8(0xF)
        want = signed_expected(name, want_pos, negative)
        bad = np.flatnonzero(got != want)[:5]
        assert bad.size == 0, (
            f"{name} exp field {exp_field} neg={negative}: mantissas {man[bad].tolist()} "
            f"got {got[bad].tolist()} want {want[bad].tolist()}")


@pytest.mark.parametrize("name", sorted(SPEC))
def test_encode_structured_patterns_all_exponents(name: str) -> None:
    """Every finite float32 exponent (both signs) with the structured mantissas above."""
    for ef in range(255):
        check_chunk(name, ef, STRUCT_MAN)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e2m1"])
def test_encode_8bit_every_pattern_near_largest(name: str) -> None:
    """Every float32 bit pattern in the top binade and the overflow binade after it."""
    hi = active_exponents(name)[-1]
    for ef in (hi - 2, hi - 1):
        check_chunk(name, ef, ALL_MAN)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e2m1", "e8m0"])
def test_encode_8bit_every_pattern_near_smallest(name: str) -> None:
    """Every float32 bit pattern in the binades around the smallest (subnormal) value."""
    lo = {"e8m0": 1}.get(name, active_exponents(name)[0] + 1)
    for ef in (lo - 1, lo, lo + 1):
        check_chunk(name, ef, ALL_MAN)


# Exponent fields swept completely by default: around the smallest subnormal, the subnormal to
# normal step, (bf16) 1.0, and the top binades with the overflow binade after them.
SWEPT = {"fp16": (102, 112, 113, 142, 143), "bf16": (0, 1, 2, 127, 253, 254)}


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_encode_16bit_every_pattern_at_edges(name: str) -> None:
    for ef in SWEPT[name]:
        check_chunk(name, ef, ALL_MAN)


@pytest.mark.skipif(not os.environ.get("QORACLE_EXHAUSTIVE"),
                    reason="the full sweep takes about 2.5 minutes on 2 cores; set QORACLE_EXHAUSTIVE=1")
@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_encode_16bit_every_pattern_in_range(name: str) -> None:
    """fp16: the 43 exponents where rounding matters; bf16: all of them (2^32 patterns)."""
    for ef in active_exponents(name):
        check_chunk(name, ef, ALL_MAN)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_encode_inf_nan(name: str) -> None:
    """inf takes the overflow policy; NaN stays NaN (e2m1, which has none, per the table)."""
    inf = np.array([np.inf, -np.inf], dtype=F32)
    nans = (np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0xFF800001], dtype=np.uint32)).view(F32)
    got_inf = floats.encode(inf, name).astype(np.int64)
    got_nan = floats.encode(nans, name).astype(np.int64)
    if name == "e8m0":
        assert got_inf.tolist() == [0xFF, 0xFF] and (got_nan == 0xFF).all()
        return
    E, M, _, _ = SPEC[name]
    assert got_inf.tolist() == [OVERFLOW_CODE[name], OVERFLOW_CODE[name] | (1 << (E + M))]
    if name == "e2m1":
        # no NaN code: a NaN becomes the zero of the opposite sign, +NaN -> 8 (-0), -NaN -> 0 (+0)
        assert (got_nan & 0xF).tolist() == [8, 8, 8, 0, 0]
    else:
        assert np.isnan(floats.decode(got_nan, name)).all()


@pytest.mark.parametrize("name", sorted(SPEC))
def test_every_code_round_trips(name: str) -> None:
    codes = np.arange(n_codes(name))
    values = floats.decode(codes, name)
    ok = ~np.isnan(values)
    assert np.array_equal(floats.encode(values[ok], name).astype(np.int64), codes[ok])
    assert np.isnan(floats.round_to(values[~ok], name)).all()


def _pairs(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adjacent positive finite codes (k, k+1), their values, and the exact float32 midpoint."""
    v = floats.all_values(name).astype(np.float64)
    top = {"fp16": 0x7BFF, "bf16": 0x7F7F, "e4m3fn": 0x7E, "e5m2": 0x7B, "e8m0": 0xFE, "e2m1": 0x7}[name]
    k = np.arange(top)
    mid = (v[k] + v[k + 1]) / 2
    assert np.array_equal(mid.astype(F32).astype(np.float64), mid)  # representable in float32
    return k, v[k], v[k + 1], mid.astype(F32)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_midpoints_round_to_even_and_neighbours_to_nearest(name: str) -> None:
    """At the exact midpoint the code with an even last bit wins (e8m0: the larger, half-up);
    one float32 ulp either side goes to the nearer code. Negative values mirror this."""
    k, _, _, mid = _pairs(name)
    tie = k + 1 if name == "e8m0" else np.where(k % 2 == 0, k, k + 1)
    below = np.nextafter(mid, F32(0))
    above = np.nextafter(mid, F32(np.inf))
    E, M, _, signed = SPEC[name]
    for x, want in ((mid, tie), (below, k), (above, k + 1)):
        assert np.array_equal(floats.encode(x, name).astype(np.int64), want)
        if signed:
            got = floats.encode(-x, name).astype(np.int64) & ((1 << (E + M + 1)) - 1)
            assert np.array_equal(got, want | (1 << (E + M)))


@pytest.mark.parametrize("name", sorted(SPEC))
def test_overflow_threshold(name: str) -> None:
    """Past the largest finite value: the table's policy, decided at largest + half an ulp."""
    v = floats.all_values(name).astype(np.float64)
    top = {"fp16": 0x7BFF, "bf16": 0x7F7F, "e4m3fn": 0x7E, "e5m2": 0x7B, "e8m0": 0xFE, "e2m1": 0x7}[name]
    ulp = v[top] - v[top - 1] if name != "e8m0" else v[top]  # e8m0: the next power would be 2x
    threshold = F32(v[top] + ulp / 2)
    just_below = np.nextafter(threshold, F32(0))
    got = floats.encode(np.array([just_below, threshold, np.nextafter(threshold, F32(np.inf)), np.finfo(F32).max],
                                 dtype=F32), name).astype(np.int64)
    policy = 0xFF if name == "e8m0" else OVERFLOW_CODE[name]
    # at the threshold itself: ties to even; the largest finite code is odd except e4m3fn's 0x7e
    at = {"e4m3fn": top, "e2m1": top}.get(name, policy)
    assert got.tolist() == [top, at, policy, policy]
