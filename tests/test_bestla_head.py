"""BesTLA's final quantizers (intel/neural-speed bfd5d3c1, "bestla.neural_speed.*") against
scalar transcriptions written here from kernel_ref.h, at every threshold, tie and switch.

The transcriptions take their constants from the source text (decimal literals, `c.f / 6`) and
round them to float32 with exact fractions, then follow each C line with float32 scalars; they
do not call the oracle. auto-round-lib (a BesTLA build) has no float quantizer, so the quantizers
themselves stay source reading; what it confirms is how their codes read back and multiply.
"""
from __future__ import annotations

import importlib.util
import math
from fractions import Fraction

import numpy as np
import pytest

import oracle.conventions as conventions
from oracle.conventions import bestla

F32 = np.float32
FLT_MIN, FLT_MAX = F32(2.0 ** -126), F32(np.finfo(np.float32).max)


def f32_of(fr: Fraction) -> F32:
    """The float32 nearest to an exact fraction, ties to even (a C float literal or float division)."""
    c = F32(float(fr))
    cands = [np.nextafter(c, F32(-np.inf)), c, np.nextafter(c, F32(np.inf))]
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - fr), int(np.array(v).view(np.uint32)) & 1))


def lit(text: str) -> F32:
    """A C float literal such as 0.03979014977812767f."""
    return f32_of(Fraction(text))


def around(v: F32) -> list[F32]:
    """v and its float32 neighbours."""
    return [np.nextafter(v, F32(-np.inf)), v, np.nextafter(v, F32(np.inf))]


# -- 4-bit float trees, transcribed from fp4_e2m1_quantize / fp4_bnb_quantize / nf4_quantize ---------

E2M1_T = {c: f32_of(Fraction(c) / 6) for c in ("0.03125", "0.53125", "1.25", "1.75", "2.5", "3.5", "5")}
BNB_T = {s: lit(s) for s in ("0.29166667", "0.583333", "0.8333333", "0.4166667", "0.0859375", "0.20833333",
                             "0.00260417")}
NF4_T = {s: lit(s) for s in (
    "0.03979014977812767", "0.3893125355243683", "0.6427869200706482", "0.8614784181118011", "0.5016634166240692",
    "0.2035212516784668", "0.2920137718319893", "0.1202552504837513", "-0.33967943489551544", "-0.13791173323988914",
    "-0.045525018125772476", "-0.23460740596055984", "-0.6106329262256622", "-0.4599952697753906",
    "-0.8480964004993439")}


def e2m1_port(x: F32) -> int:
    t = E2M1_T
    sign = 8 if x < 0 else 0
    x = abs(x)
    if x > t["1.75"]:
        if x > t["3.5"]:
            return (7 if x > t["5"] else 6) + sign
        return (5 if x > t["2.5"] else 4) + sign
    if x > t["0.53125"]:
        return (3 if x > t["1.25"] else 2) + sign
    return (1 if x > t["0.03125"] else 0) + sign


def bnb_port(x: F32) -> int:
    t = BNB_T
    sign = 8 if x < 0 else 0
    x = abs(x)
    if x > t["0.29166667"]:
        if x > t["0.583333"]:
            return (0b0011 if x > t["0.8333333"] else 0b0010) + sign
        return (0b101 if x > t["0.4166667"] else 0b100) + sign
    if x > t["0.0859375"]:
        return (0b0111 if x > t["0.20833333"] else 0b0110) + sign
    return (0b0001 if x > t["0.00260417"] else 0b0000) + sign


def nf4_port(x: F32) -> int:
    t = NF4_T
    if x > t["0.03979014977812767"]:
        if x > t["0.3893125355243683"]:
            if x > t["0.6427869200706482"]:
                return 0b1111 if x > t["0.8614784181118011"] else 0b1110
            return 0b1101 if x > t["0.5016634166240692"] else 0b1100
        if x > t["0.2035212516784668"]:
            return 0b1011 if x > t["0.2920137718319893"] else 0b1010
        return 0b1001 if x > t["0.1202552504837513"] else 0b1000
    if x > t["-0.33967943489551544"]:
        if x > t["-0.13791173323988914"]:
            return 0b0000 if x > t["-0.045525018125772476"] else 0b0110
        return 0b0101 if x > t["-0.23460740596055984"] else 0b0100
    if x > t["-0.6106329262256622"]:
        return 0b0011 if x > t["-0.4599952697753906"] else 0b0010
    return 0b0001 if x > t["-0.8480964004993439"] else 0b0111


F4 = {"fp4_e2m1": (e2m1_port, E2M1_T), "fp4_bnb": (bnb_port, BNB_T), "nf4": (nf4_port, NF4_T)}
PREFIXES = ["bestla.neural_speed", "bestla.neural_speed_98ffee4"]


def _f4_rows(thresholds: dict) -> np.ndarray:
    """31 probe values per row beside a 1.0 (absmax 1, so x * (1/absmax) is x itself)."""
    pts = [p for t in thresholds.values() for v in around(t) for p in (v, -v)]
    pts += [F32(0.0), F32(-0.0), F32(np.nan), F32(1e-3), F32(-1e-3), F32(1.0), F32(-1.0), FLT_MIN, -FLT_MIN]
    pts += [F32(np.nan)] * (-len(pts) % 31)
    body = np.array(pts, dtype=np.float32).reshape(-1, 31)
    return np.concatenate([np.ones((body.shape[0], 1), np.float32), body], axis=1)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("name", sorted(F4))
def test_f4_codes_at_every_threshold_and_ulp_either_side(prefix: str, name: str) -> None:
    full = f"{prefix}.{name}"
    if full not in conventions.names():
        pytest.skip(f"{full} is not a convention of that era")
    port, thresholds = F4[name]
    x = _f4_rows(thresholds)
    qw = conventions.get(full).quantize(x)
    assert np.all(qw.scales == 1)
    expected = [[port(v) for v in row] for row in x]
    assert qw.codes.tolist() == expected


def test_e2m1_sign_of_zero_and_the_top_threshold() -> None:
    """Small positive -> 0, small negative -> 8 (`x < 0 ? 8 : 0`); 5.f/6 = 0.8333333 stays at 4/6,
    the next float 0.83333337 (the rounded midpoint of 4/6 and 6/6) is the top code."""
    conv = conventions.get("bestla.neural_speed.fp4_e2m1")
    x = np.array([[1.0, 1e-3, -1e-3, 0.0, -0.0, np.nan, 0.8333333, 0.83333337, -0.83333337]], dtype=np.float32)
    x = np.pad(x, ((0, 0), (0, 32 - x.shape[1])))
    assert conv.quantize(x).codes[0, :9].tolist() == [7, 0, 8, 0, 0, 0, 6, 7, 15]
    mids = [f32_of((Fraction(float(F32(a / 6))) + Fraction(float(F32(b / 6)))) / 2)
            for a, b in ((0, 0.0625), (0.0625, 1), (1, 1.5), (1.5, 2), (2, 3), (3, 4), (4, 6))]
    off = sum(m != t for m, t in zip(mids, E2M1_T.values()))
    assert off == 6, "six of the seven float32 thresholds are not the rounded table midpoints"


def test_nf4_nan_gets_minus_one_and_dequantizes_through_the_table() -> None:
    conv = conventions.get("bestla.neural_speed.nf4")
    x = np.zeros((1, 32), np.float32)
    x[0, :4] = (2.0, np.nan, -2.0, 0.0)
    qw = conv.quantize(x)
    assert qw.codes[0, :4].tolist() == [0b1111, 0b0111, 0b0111, 0]
    assert conv.dequantize(qw)[0, :4].tolist() == [2.0, -2.0, -2.0, 0.0]


# -- integers: quantize_f32_sign_int_rowblock (sNauto_* lambdas) -------------------------------------

def _roundf(t: F32) -> float:
    if not math.isfinite(t):
        return float(t)
    r = math.trunc(float(t))
    return float(r + (math.copysign(1, t) if abs(float(t) - r) >= 0.5 else 0))


def _to_int32(v: float) -> int:
    """(int) of a float on x86-64: NaN and out-of-range are INT_MIN."""
    return int(v) if math.isfinite(v) and -2.0 ** 31 <= v < 2.0 ** 31 else -2 ** 31


def _wrap(i: int) -> int:
    return (i + 2 ** 31) % 2 ** 32 - 2 ** 31


def port_int(xs: list, bits: int, sym: bool) -> tuple[list, F32, int | None]:
    full, symv = 1 << (bits - 1), (1 << (bits - 1)) - 1

    def clip(s: int) -> int:
        return min(max(s, -full), symv)

    with np.errstate(all="ignore"):
        if sym:
            mx, mn, am = FLT_MIN, FLT_MAX, F32(0)
            for v in xs:
                mx = v if mx < v else mx
                mn = v if v < mn else mn
                am = abs(v) if am < abs(v) else am
            nval = F32(symv) + F32(0.5)
            s = F32(mx + mn)
            if abs(s) >= F32(am / F32(full)):
                nval = F32(-full) if s > 0 else F32(full)
            scale = F32(am / nval)
            rscale = F32(F32(1) / scale)
            codes = []
            for v in xs:
                r = _roundf(F32(v * rscale))
                r = 127.0 if 127.0 < r else r
                r = -128.0 if r < -128.0 else r
                codes.append(clip(((_to_int32(r) & 0xFF) ^ 0x80) - 0x80))  # (int8_t): the low byte
            return codes, scale, None
        mx, mn = F32(0), F32(0)
        for v in xs:
            mx = v if mx < v else mx
            mn = v if v < mn else mn
        scale = F32(F32(mx - mn) / F32((1 << bits) - 1))
        rscale = F32(F32(1) / scale)
        zp = clip(_wrap(_to_int32(_roundf(F32(F32(F32(0) - mn) * rscale))) - full))
        codes = [clip(_wrap(_to_int32(_roundf(F32(v * rscale))) + zp)) for v in xs]
        return codes, scale, zp


INT_NAMES = [f"bestla.neural_speed.int{b}.{k}" for b in range(1, 9) for k in ("sym", "asym")]


def _check_rows(name: str, x: np.ndarray) -> None:
    conv = conventions.get(name)
    with np.errstate(all="ignore"):
        qw = conv.quantize(x)
    for i, row in enumerate(x):
        codes, scale, zp = port_int([F32(v) for v in row], conv.bits, conv.symmetric)
        assert qw.codes[i].tolist() == codes, f"row {i}: {row}"
        assert qw.scales[i, 0].view(np.uint32) == F32(scale).view(np.uint32), f"row {i}"
        if zp is not None:
            assert qw.zeros[i, 0] == zp, f"row {i}"


def _switch_rows(bits: int) -> list[np.ndarray]:
    """Groups whose |max + min| is exactly absmax / 2^(b-1), and one float32 ulp either side, both signs."""
    full = 1 << (bits - 1)
    rows = []
    for a in (F32(1.0), F32(3.0), F32(0.375)):
        edge = F32(a - F32(a / F32(full)))  # exact for these a: |a + (-edge)| == a / full
        assert Fraction(float(a)) - Fraction(float(edge)) == Fraction(float(a)) / full
        for e in around(edge):
            for sgn in (1, -1):
                r = np.linspace(-float(e), float(a), 32).astype(np.float32) * sgn
                r[0], r[-1] = -e * sgn, a * sgn
                rows.append(r)
    return rows


def _tie_rows(bits: int, sym: bool) -> list[np.ndarray]:
    """Groups whose scale is exactly 1 (so x * rscale = x): every half-integer in range is a roundf tie."""
    full = 1 << (bits - 1)
    if sym:  # absmax = full - 0.5 with |max + min| small: NVal = full - 0.5, scale 1
        ends = (F32(full - 0.5), F32(-(full - 1)))
    else:  # (max - min) = 2^b - 1: scale 1; min a half-integer makes the zero point a tie too
        ends = (F32((1 << bits) - 1 - full + 0.5), F32(-full + 0.5))
    halves = np.arange(-full, full) + 0.5
    rows = []
    for chunk in np.array_split(halves, -(-len(halves) // 30)):
        r = np.zeros(32, np.float32)
        r[0], r[1] = ends
        r[2:2 + len(chunk)] = chunk
        rows.append(r)
    return rows


@pytest.mark.parametrize("name", INT_NAMES)
def test_int_quantizer_at_the_switch_and_ties_matches_the_transcription(name: str) -> None:
    conv = conventions.get(name)
    rows = _tie_rows(conv.bits, conv.symmetric) + (_switch_rows(conv.bits) if conv.symmetric else [])
    rng = np.random.default_rng(conv.bits)
    rows += [rng.standard_normal(32).astype(np.float32) * s for s in (1e-30, 1e-3, 1.0, 1e30)]
    rows += [np.abs(rng.standard_normal(32)).astype(np.float32), -np.abs(rng.standard_normal(32)).astype(np.float32),
             np.zeros(32, np.float32), np.full(32, -0.0, np.float32), np.full(32, 2.5, np.float32),
             np.full(32, 1e-45, np.float32)]
    r = rng.standard_normal(32).astype(np.float32)
    r[[3, 9]] = np.nan
    rows.append(r)
    _check_rows(name, np.stack(rows).astype(np.float32))


@pytest.mark.parametrize("bits", range(2, 9))
def test_sym_switch_at_equality_picks_minus_full(bits: int) -> None:
    """max 1, min -(1 - 1/F): |max + min| == absmax/F, so NVal = -F and scale = -1/F; one ulp more
    negative min and the plain NVal F - 0.5 returns (the rule is `>=`)."""
    full = 1 << (bits - 1)
    conv = conventions.get(f"bestla.neural_speed.int{bits}.sym")
    edge = F32(1 - 1 / full)
    x = np.zeros((3, 32), np.float32)
    x[:, 0] = 1.0
    x[0, 1], x[1, 1] = -edge, -np.nextafter(edge, F32(2))
    x[2, 0], x[2, 1] = -1.0, edge  # the negative side dominates: NVal = +F
    qw = conv.quantize(x)
    assert qw.scales[:, 0].tolist() == [-1 / full, float(F32(1) / F32(full - 0.5)), 1 / full]
    assert qw.codes[0, :2].tolist() == [-full, full - 1] and qw.codes[2, :2].tolist() == [-full, full - 1]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_ties_round_half_away(bits: int) -> None:
    full = 1 << (bits - 1)
    sym = conventions.get(f"bestla.neural_speed.int{bits}.sym")
    x = np.zeros((1, 32), np.float32)
    x[0, :4] = (full - 0.5, -(full - 1), 0.5, -0.5)
    assert sym.quantize(x).codes[0, :4].tolist() == [full - 1, -(full - 1), 1, -1]
    asym = conventions.get(f"bestla.neural_speed.int{bits}.asym")
    x[0, :4] = ((1 << bits) - 1 - full + 0.5, -full + 0.5, 0.5, -0.5)  # scale 1, zp = roundf(full - 0.5) - full = 0
    qw = asym.quantize(x)
    assert qw.scales[0, 0] == 1 and qw.zeros[0, 0] == 0
    assert qw.codes[0, :4].tolist() == [full - 1, -full, 1, -1]


# -- bit planes: compress_{1..7}bit / compress_s8_s4 -------------------------------------------------

def port_compress(q: list, bits: int) -> dict[str, list]:
    """Element-by-element transcription of compress_{bits}bit over one row, source indices kept."""
    k, full = len(q), 1 << (bits - 1)
    planes = {w: [0] * (k * w // 8) for w in {1: (1,), 2: (2,), 3: (2, 1), 4: (4,), 5: (4, 1), 6: (4, 2),
                                              7: (4, 2, 1)}[bits]}
    widths = sorted(planes, reverse=True)
    step = 8 if bits in (1, 3, 5, 7) else (4 if bits in (2, 6) else 2)
    for j in range(0, k, step):
        for m in range(step):
            src = j + (full if bits in (1, 3) and m == 4 else m)  # `srcptr[j + FullRange]` for slot e
            u, shift, i = q[src] + full, 0, j + m
            for w in widths:
                field = (u >> shift) & ((1 << w) - 1)
                planes[w][i * w // 8] |= field << (i * w % 8)
                shift += w
    return {f"bit{w}": p for w, p in planes.items()}


@pytest.mark.parametrize("bits", range(1, 8))
def test_compress_planes_match_the_transcription_and_int1_loses_element_4(bits: int) -> None:
    full = 1 << (bits - 1)
    rng = np.random.default_rng(bits)
    q = rng.integers(-full, full, (5, 64)).astype(np.int32)
    q[0, :], q[1, :] = -full, full - 1
    planes = bestla.compress_planes(q, bits)
    for i in range(q.shape[0]):
        port = port_compress(q[i].tolist(), bits)
        assert {key: planes[key][i].tolist() for key in planes} == port
    back = bestla.decompress_planes(planes, bits, 64)
    if bits != 1:
        assert np.array_equal(back, q)
    else:
        moved = np.zeros_like(q, dtype=bool)
        moved[:, 4::8] = True
        assert np.array_equal(back[~moved], q[~moved])
        assert np.array_equal(back[:, 4::8], q[:, 1::8])
        assert np.any(q[:, 4::8] != q[:, 1::8]), "the probe must hold codes that differ there"
    with pytest.raises(ValueError, match="K %"):
        bestla.compress_planes(q[:, :-1], bits)


# -- against auto-round-lib (BesTLA built into a wheel): read-back and GEMM of the HEAD codes ----------

needs_ark = pytest.mark.skipif(importlib.util.find_spec("auto_round_kernel") is None,
                               reason="auto-round-lib not installed")


@needs_ark
@pytest.mark.parametrize("sym", [True, False])
def test_ark_reads_back_and_multiplies_head_codes(sym: bool) -> None:
    """Codes, scales and zero points from the HEAD convention, through ARK's repack: unpack_weight
    equals the convention's dequantization bit for bit, and woqgemm stays inside the derived error
    bound of the exact product with that dequantized weight (a path that shares no code with ARK)."""
    from kernels.worker import Worker
    from oracle.gemm.wxa16 import wxa16_exact

    rng = np.random.default_rng(23)
    n, k, g = 24, 128, 32
    w = rng.standard_normal((n, k)).astype(np.float32)
    w[:4, :32] = np.abs(w[:4, :32]) + 0.5  # one-sided groups: the switch and large zero points
    x = rng.standard_normal((3, k)).astype(np.float32)
    with Worker(timeout=240) as worker:
        for bits in range(2, 9):
            conv = conventions.get(f"bestla.neural_speed.int{bits}.{'sym' if sym else 'asym'}")
            qw = conv.quantize(w)
            codes, zeros = qw.codes.astype(np.int8), None if sym else qw.zeros.astype(np.int8)
            deq = conv.dequantize(qw)
            out = worker.call("kernels.bestla.ark", "unpack", codes, qw.scales, zeros, bits=bits, group_size=g)
            assert out.ok, f"ARK int{bits} {out.status}: {out.detail}"
            assert np.array_equal(out.value.view(np.uint32), deq.view(np.uint32)), f"int{bits}"
            out = worker.call("kernels.bestla.ark", "woqgemm", x, codes, qw.scales, zeros, None, bits=bits,
                              group_size=g)
            assert out.ok, f"ARK woqgemm int{bits} {out.status}: {out.detail}"
            exact, bound = wxa16_exact(x, deq, None, acc="fp32", out="fp32", order="any")
            err = np.abs(out.value.astype(np.float64) - exact)
            assert np.all(err <= bound), f"int{bits}: {err.max()} > {bound[err > bound].min()}"


def test_every_bestla_convention_names_its_commit_and_says_source_reading() -> None:
    names = [n for n in conventions.names() if n.startswith("bestla.neural_speed")]
    assert len([n for n in names if n.startswith("bestla.neural_speed.")]) == 16 + 3 + 4
    assert len([n for n in names if n.startswith("bestla.neural_speed_98ffee4.")]) == 6 + 4
    for n in names:
        conv = conventions.get(n)
        commit = "98ffee45" if n.startswith("bestla.neural_speed_98ffee4.") else "bfd5d3c1"
        assert commit in conv.source and "kernel_ref.h" in conv.source, n
        assert "source reading" in conv.summary and "source reading" in conv.confirmed, n
