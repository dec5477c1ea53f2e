"""The January-2024 BesTLA conventions ("bestla.neural_speed_98ffee4.*") and the fp8 model of
both eras, against the BesTLA shipped in auto-round-lib (ARK) and scalar source ports.

ARK exposes no float quantizer (only `repack_quantized_weight` of integer codes and
`unpack_weight`), so the quantizers stay source reading; what the library can confirm is the
dequantization rule the conventions use: signed codes q in [-8, 7] (nibble q + 8) times the
fp32 scale, minus a signed zero point when asymmetric, and for the asymmetric int4/int8
conventions the storage of their own codes and signed zero points; for int2, int3, int5, int6
and int7 (no quantizer at 98ffee45; the final rules are tests/test_bestla_head.py's) the
(q - zp) * scale read-back. The quantizer arithmetic is checked against a scalar line-by-line
port of the cited kernel_ref.h source (which pins the vectorization, not the source reading).
ARK runs in a worker process because some of its paths abort.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import oracle.conventions as conventions
from oracle import floats


def ark_unpack(codes_kn: np.ndarray, scales: np.ndarray, zps: np.ndarray, group: int, asym: bool,
               weight_type: str = "int4") -> np.ndarray:
    """Repack signed codes [K, N] with fp32 scales [K/g, N] and read them back as float32 [N, K]."""
    import torch
    import auto_round_kernel as ark

    k, n = codes_kn.shape
    blob = ark.repack_quantized_weight(torch.from_numpy(codes_kn), torch.from_numpy(scales), torch.from_numpy(zps),
                                       group, "fp32", weight_type, "fp32", asym)
    return ark.unpack_weight(blob, torch.float32, n, k, group, "fp32", weight_type, "fp32", asym).contiguous().numpy()


@pytest.mark.skipif(importlib.util.find_spec("auto_round_kernel") is None, reason="auto-round-lib not installed")
@pytest.mark.parametrize("asym", [False, True])
def test_ark_int4_dequantization_rule(asym: bool) -> None:
    from kernels.worker import Worker

    conv = conventions.get("bestla.neural_speed_98ffee4.int4_fullrange.sym")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((48, 128)).astype(np.float32)
    qw = conv.quantize(w)
    signed = (qw.codes - 8).astype(np.int8)  # ARK takes the signed value; its nibble is q + 8
    zps = rng.integers(-3, 4, qw.scales.shape).astype(np.int8) if asym else np.zeros(qw.scales.shape, np.int8)
    with Worker(timeout=120) as worker:
        out = worker.call("tests.test_conventions_bestla", "ark_unpack", np.ascontiguousarray(signed.T),
                          np.ascontiguousarray(qw.scales.T), np.ascontiguousarray(zps.T), conv.group_size, asym)
    assert out.ok, f"ARK {out.status}: {out.detail}"
    expected = ((signed.astype(np.float32) - np.repeat(zps, conv.group_size, 1).astype(np.float32))
                * np.repeat(qw.scales, conv.group_size, 1)).astype(np.float32)
    if not asym:
        assert np.array_equal(expected.view(np.uint32), conv.dequantize(qw).view(np.uint32))
    assert np.array_equal(out.value.view(np.uint32), expected.view(np.uint32))


ASYM = {"bestla.neural_speed_98ffee4.int4_fullrange.asym": "int4", "bestla.neural_speed_98ffee4.int8.asym": "int8"}


@pytest.mark.skipif(importlib.util.find_spec("auto_round_kernel") is None, reason="auto-round-lib not installed")
@pytest.mark.parametrize("name", sorted(ASYM))
def test_ark_reads_asym_codes_and_zero_points_as_the_convention_dequantizes(name: str) -> None:
    """The asymmetric quantizers' own codes, scales and signed zero points through ARK's
    repack/unpack: bit-identical floats, so the stored layout and the dequant rule agree."""
    from kernels.worker import Worker

    conv = conventions.get(name)
    w = np.random.default_rng(11).standard_normal((48, 128)).astype(np.float32)
    w[:, :32] += np.float32(1.5)  # one-sided groups: a large zero point
    qw = conv.quantize(w)
    signed = (qw.codes - (8 if conv.bits == 4 else 0)).astype(np.int8)  # ARK takes the signed value
    with Worker(timeout=120) as worker:
        out = worker.call("tests.test_conventions_bestla", "ark_unpack", np.ascontiguousarray(signed.T),
                          np.ascontiguousarray(qw.scales.T), np.ascontiguousarray(qw.zeros.T.astype(np.int8)),
                          conv.group_size, True, ASYM[name])
    assert out.ok, f"ARK {out.status}: {out.detail}"
    assert np.array_equal(out.value.view(np.uint32), conv.dequantize(qw).view(np.uint32))


OTHER_WIDTHS = (2, 3, 5, 6, 7)  # ARK's weight types; it rejects "int1"


@pytest.mark.skipif(importlib.util.find_spec("auto_round_kernel") is None, reason="auto-round-lib not installed")
@pytest.mark.parametrize("asym", [False, True])
def test_ark_other_int_widths_dequantize_as_q_minus_zp_times_scale(asym: bool) -> None:
    """Any signed codes (not only a quantizer's) read back as (q - zp) * scale: signed q over the full
    [-2^(b-1), 2^(b-1) - 1] (both ends included), (q - zp) * fp32 scale, bit-exact."""
    from kernels.worker import Worker

    rng = np.random.default_rng(17)
    k, n, g = 96, 48, 32
    with Worker(timeout=180) as worker:
        for bits in OTHER_WIDTHS:
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            codes = rng.integers(lo, hi + 1, (k, n)).astype(np.int8)
            codes[0, :], codes[1, :] = lo, hi
            scales = rng.uniform(-2, 2, (k // g, n)).astype(np.float32)
            zps = rng.integers(lo, hi + 1, scales.shape).astype(np.int8) if asym else np.zeros(scales.shape, np.int8)
            out = worker.call("tests.test_conventions_bestla", "ark_unpack", codes, scales, zps, g, asym, f"int{bits}")
            assert out.ok, f"ARK int{bits} {out.status}: {out.detail}"
            expected = ((codes.astype(np.float32) - np.repeat(zps, g, 0).astype(np.float32))
                        * np.repeat(scales, g, 0)).astype(np.float32).T
            assert np.array_equal(out.value.view(np.uint32), expected.view(np.uint32)), f"int{bits}"


def _port_asym_group(v: list, bits: int) -> tuple[list, np.float32, int]:
    """Line-by-line scalar port of s8_/s4_fullrange_calc_store_scale_and_quantv_asym (kernel_ref.h
    0157342) with cast<float, int8_t> from bestla_utils.h, in float32 as the C does it."""
    f32 = np.float32

    def cast_s8(t):
        t = f32(np.copysign(np.floor(abs(t) + 0.5), t)) if abs(t - np.trunc(t)) == 0.5 else f32(np.round(t))
        t = t if not (f32(127) < t) else f32(127)
        t = t if not (t < f32(-128)) else f32(-128)
        return 0 if np.isnan(t) else int(t)

    mx, mn = f32(0), f32(0)
    for x in v:
        mx = x if mx < x else mx
        mn = x if x < mn else mn
    with np.errstate(all="ignore"):
        if bits == 8:
            scale = f32(f32(mx - mn) / f32(255))
            rscale = f32(f32(1) / scale)
        else:
            rng = f32(mn - mx) if abs(mx) < abs(mn) else f32(mx - mn)
            scale = f32(rng / f32(-16))
            rscale = f32(f32(1) / scale) if scale != 0 else f32(0)
        mid = f32(f32(mx + mn) / f32(2))
        zp = cast_s8(f32(f32(f32(0) - mid) * rscale))
        codes = []
        for x in v:
            t = f32(f32(x - mid) * rscale)
            if bits == 8:
                codes.append(cast_s8(t))
            else:
                c = f32(t + f32(8.5))
                codes.append(min(15, int(np.trunc(c)) if np.isfinite(c) else 0))
    return codes, scale, zp


@pytest.mark.parametrize("name", sorted(ASYM))
def test_asym_quantizer_matches_a_scalar_port_of_the_source(name: str) -> None:
    conv = conventions.get(name)
    rng = np.random.default_rng(13)
    rows = [rng.standard_normal(32) * s for s in (1e-3, 1.0, 1e3)]
    rows += [np.abs(rng.standard_normal(32)), -np.abs(rng.standard_normal(32)), np.zeros(32), np.full(32, 2.5),
             (rng.integers(-8, 8, 32) + 0.5) * 0.25]
    r = rng.standard_normal(32)
    r[5] = np.nan
    rows.append(r)
    x = np.stack(rows).astype(np.float32)
    with np.errstate(all="ignore"):
        qw = conv.quantize(x)
    for i, row in enumerate(x):
        codes, scale, zp = _port_asym_group([np.float32(v) for v in row], conv.bits)
        assert qw.codes[i].tolist() == codes, f"row {i}"
        assert qw.scales[i, 0].view(np.uint32) == np.float32(scale).view(np.uint32) and qw.zeros[i, 0] == zp, f"row {i}"


# -- fp8 (quantize_f32_f8_rowblock_mxscale) -----------------------------------------------------

import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import math  # noqa: E402
import struct  # noqa: E402

from oracle.conventions import bestla_f8  # noqa: E402

_LIBM = ctypes.util.find_library("m")
needs_libm = pytest.mark.skipif(_LIBM is None, reason="no C math library to take log2f from")
F8_NAMES = [f"{p}.fp8_{f}.{s}" for p in ("bestla.neural_speed", "bestla.neural_speed_98ffee4")
            for f in ("e4m3", "e5m2") for s in ("e8m0", "fp32")]


def _log2f():
    fn = ctypes.CDLL(_LIBM).log2f
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def _f32(v: float) -> float:
    return struct.unpack("<f", struct.pack("<f", v))[0]


def _bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def _port_f8_mx_quantize(v: float, scale: float, e8m0: bool, ebits: int, qm: int, log2f) -> int:
    """Line by line f8_mx_quantize (kernel_ref.h 98ffee4); Python floats are C doubles, _f32 a
    store to a float variable, log2f/floorf libm's; uint8 from a negative double as x86-64 GCC
    converts it (cvttsd2si, low byte)."""
    v = _f32(v / 2.0 ** scale) if e8m0 else float(np.float32(v) / np.float32(scale))
    store_mantissa = 7 - ebits
    private_exp = float(math.floor(log2f(abs(v + 1 if v == 0 else v)))) if not math.isnan(v) else math.nan
    min_exp = -1 * 2.0 ** (ebits - 1) + 2
    private_exp = min_exp if private_exp < min_exp else private_exp
    v = _f32(v / 2.0 ** private_exp * 2.0 ** (qm - 2)) if not math.isnan(v) else v
    sign = 1 if v > 0 else -1
    v = _f32(sign * float(math.floor(abs(v) + 0.5))) if not math.isnan(v) else abs(v)
    v = _f32(v / 2.0 ** (qm - 2) * 2.0 ** private_exp) if not math.isnan(v) else v
    max_norm = float(bestla_f8.f8_max_norm("e4m3" if ebits == 4 else "e5m2"))
    v = -max_norm if v < -max_norm else (max_norm if max_norm < v else v)
    b = _bits(v) if not math.isnan(v) else (_bits(v) | 0x00400000) & 0x7FFFFFFF
    store_signbit = (b >> 24) & 0x80
    b = (b << 1) & 0xFFFFFFFF
    store_ebit = int((b >> 24) - 127 + 2.0 ** (ebits - 1) - 1) & 0xFF
    if store_ebit > 15 and ebits == 4:
        store_ebit = 0
    if store_ebit > 31 and ebits == 5:
        store_ebit = 0
    store_ebit = (store_ebit << store_mantissa) & 0xFF
    b = (b << 8) & 0xFFFFFFFF
    ox80_shift = (-128 >> (store_mantissa - 1)) & 0xFF
    store_mantissabit = ((b >> 24) & ox80_shift) >> (1 + ebits)
    return store_signbit | store_ebit | store_mantissabit


def _port_f8_block(xs: list, e8m0: bool, ebits: int, qm: int, log2f) -> tuple[list, float]:
    """quantize_f32_f8_rowblock_mxscale for one block: (codes, the scale's value)."""
    scale = float(np.finfo(np.float32).tiny)
    for x in xs:
        scale = abs(x) if scale < abs(x) else scale
    if e8m0:
        if scale == 0:
            scale += float(np.finfo(np.float32).tiny)
        scale = float(math.floor(log2f(scale))) if math.isfinite(scale) else scale
        emax = 2.0 ** (ebits - 1) - (1 if ebits == 5 else 0)
        scale -= emax
        scale = -127.0 if scale < -127.0 else scale
    else:
        scale = float(np.float32(scale) / bestla_f8.f8_max_norm("e4m3" if ebits == 4 else "e5m2"))
    codes = [_port_f8_mx_quantize(x, scale, e8m0, ebits, qm, log2f) for x in xs]
    return codes, (2.0 ** scale if e8m0 else scale)


def _boundary_rows(fmt: str) -> np.ndarray:
    """32-element blocks: every f8 grid value and midpoint (and their float32 neighbours), under
    scales at and around powers of two, zero and subnormal blocks, NaN."""
    ebits, qm = bestla_f8._F8[fmt]
    top = float(bestla_f8.f8_max_norm(fmt))
    lo = 2 - 2 ** (ebits - 1)
    grid = sorted({m / 2 ** (qm - 2) * 2.0 ** e for e in range(lo, 2 ** (ebits - 1) + 1) for m in range(0, 2 ** (qm - 1))})
    grid = [g for g in grid if g <= 2 * top]
    mids = [(a + b) / 2 for a, b in zip(grid, grid[1:])]
    pts = np.array(grid + mids, dtype=np.float32)
    pts = np.concatenate([pts, np.nextafter(pts, np.float32(0)), np.nextafter(pts, np.float32(np.inf))])
    pts = np.concatenate([pts, -pts])
    rng = np.random.default_rng(17)
    rows = []
    for k in (-133, -126, -20, -1, 0, 3, 60, 119):  # element scale 2^k: amax <= 2^(k+emax+1)
        anchor = 2.0 ** (k + (8 if fmt == "e4m3" else 15))
        if anchor > float(np.finfo(np.float32).max):
            continue
        anchor = np.float32(anchor)
        vals = pts.astype(np.float64) * 2.0 ** k
        vals = vals[np.abs(vals) <= anchor].astype(np.float32)
        rng.shuffle(vals)
        vals = vals[: len(vals) // 31 * 31].reshape(-1, 31)
        for i, r in enumerate(vals[:40]):
            a = (anchor, np.nextafter(anchor, np.float32(0)), np.nextafter(anchor, np.float32(np.inf)))[i % 3]
            rows.append(np.concatenate([[a], r]))
    amax = np.float32(2.0) ** np.arange(-149, 128, dtype=np.float32)
    for a in np.concatenate([amax, np.nextafter(amax, np.float32(0)), np.nextafter(amax, np.float32(np.inf))]):
        if np.isfinite(a) and a > 0:
            r = (rng.standard_normal(32) * (float(a) / 4)).astype(np.float32)
            r[rng.integers(32)] = -a
            rows.append(r)
    rows += [np.zeros(32, np.float32), np.full(32, -0.0, np.float32), np.full(32, 1e-45, np.float32)]
    r = rng.standard_normal(32).astype(np.float32)
    r[[3, 9]] = np.nan
    rows.append(r)
    r = r.copy()
    r[[3, 9]] = (np.inf, -np.inf)
    rows.append(r)
    return np.stack(rows).astype(np.float32)


@needs_libm
def test_floor_log2f_matches_libm_at_every_power_of_two_boundary() -> None:
    log2f = _log2f()
    p = np.float32(2.0) ** np.arange(-149, 128, dtype=np.float32)
    near = [p]
    below, above = p.copy(), p.copy()
    for _ in range(80):
        below, above = np.nextafter(below, np.float32(0)), np.nextafter(above, np.float32(np.inf))
        near += [below, above]
    x = np.concatenate(near + [np.abs(np.random.default_rng(3).standard_normal(20000)).astype(np.float32) * 1e3])
    x = x[np.isfinite(x) & (x > 0)]
    expected = np.array([math.floor(log2f(float(v))) for v in x], dtype=np.float64)
    exact = np.frexp(x)[1] - 1
    assert (expected != exact).sum() > 100, "the boundary cases where log2f rounds up to the next integer"
    assert np.array_equal(bestla_f8.floor_log2f(x), expected)


@needs_libm
@pytest.mark.parametrize("name", F8_NAMES)
def test_fp8_quantizer_matches_a_scalar_port_of_the_source(name: str) -> None:
    conv = conventions.get(name)
    fmt = conv.f8_format
    ebits, qm = bestla_f8._F8[fmt]
    log2f = _log2f()
    x = _boundary_rows(fmt)
    with np.errstate(all="ignore"):
        qw = conv.quantize(x)
    for i, row in enumerate(x):
        with np.errstate(all="ignore"):
            codes, scale = _port_f8_block([float(v) for v in row], conv.scale_dtype == "e8m0", ebits, qm, log2f)
        assert qw.codes[i].tolist() == codes, f"row {i}: {row}"
        assert qw.scales[i, 0].view(np.uint32) == np.float32(scale).view(np.uint32), f"row {i}"


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_f8_codes_round_trip_and_normal_codes_read_as_ieee(fmt: str) -> None:
    """Every code whose value is within +-max_norm encodes back to itself, except in field 0,
    which the encoder reaches on the IEEE subnormal grid (one mantissa bit fewer): an odd
    mantissa there goes up by one (half away). Codes with a non-zero, non-top exponent field
    read as the IEEE/OCP format does (ml_dtypes); field 0 does not."""
    codes = np.arange(256, dtype=np.uint8)
    vals = bestla_f8.f8_decode(codes, fmt)
    ok = np.abs(vals) <= bestla_f8.f8_max_norm(fmt)
    sm = 7 - bestla_f8._F8[fmt][0]
    field = (codes & 0x7F) >> sm
    expected = np.where(field == 0, codes + (codes & 1), codes).astype(np.uint8)
    assert np.array_equal(bestla_f8.f8_encode(vals[ok], fmt), expected[ok])
    ieee = floats.decode(codes, "e4m3fn" if fmt == "e4m3" else "e5m2")
    normal = (field > 0) & (field < (15 if fmt == "e4m3" else 31))
    assert np.array_equal(vals[normal], ieee[normal])
    assert not np.any(vals[field == 0] == ieee[field == 0]), "field 0 is a normal exponent here, not subnormal/zero"


@pytest.mark.parametrize("name", F8_NAMES)
def test_fp8_zero_and_nan_policy_and_pack_round_trip(name: str) -> None:
    conv = conventions.get(name)
    bias = 7 if conv.f8_format == "e4m3" else 15
    x = np.random.default_rng(5).standard_normal((6, 80)).astype(np.float32)
    x[0, :32] = 0
    x[1, 40] = 0
    qw = conv.quantize(x)
    assert np.all(qw.codes[0, :32] == 0x80) and qw.codes[1, 40] == 0x80
    d = conv.dequantize(qw)
    assert np.array_equal(d[1, 40:41], np.float32(-(2.0 ** -bias)) * qw.scales[1, 1:2])
    back = conv.unpack(conv.pack(qw), 80)
    assert np.array_equal(back.codes, qw.codes) and np.array_equal(back.scales.view(np.uint32), qw.scales.view(np.uint32))
    inside = np.abs(x[2:]) > 2 * 2.0 ** -bias * qw.scales[2:].repeat(32, 1)[:, :80]
    assert np.array_equal(np.sign(d[2:][inside]), np.sign(x[2:][inside]))
