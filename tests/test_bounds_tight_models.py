"""The GEMM models' own bounds are nearly attained, so a model whose bound is loosened by 2x fails here.

Companion of test_bounds_tight.py for the bounds that the ATen and ONNX Runtime models derive:
_dyn_quant_matmul_4bit, MatMulNBits accuracy levels 0 and 4, the int4pack / int8pack weight
terms, linear_dynamic / qlinear_pointwise and MLAS's MatMulIntegerToFloat epilogue. Each input
makes the simulated fp32 arithmetic round the same way by (almost) the largest amount at every
step: values a tie just above a power of two, (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounding to
1 + 2^-11, terms of half an ulp of the running sum dropped by round-to-even. The error is the
simulated result minus the exact value (a Fraction of the fp32 inputs), and each test asserts
both error <= bound and error / bound above a threshold that the bound doubled cannot reach.

Two bounds cannot be attained within 2x by any input (see their tests): linear_dynamic's and
qlinear_pointwise's / MatMulIntegerToFloat's gamma_h * (|acc s| + |bias| + |exact|) counts the
product twice (in |acc s| and in |exact|), so error / bound stays below 0.5 for every input.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from oracle.conventions import get
from oracle.conventions.convention import QuantizedWeight
from oracle.gemm.aten_dyn_quant_4bit import dyn_quant_model
from oracle.gemm.aten_int4pack import int4_expected
from oracle.gemm.aten_int8pack import int8_expected, int8_predict
from oracle.gemm.aten_qlinear_dynamic import linear_dynamic_model, qlinear_pointwise_model
from oracle.gemm.mlas_int8 import float_output
from oracle.gemm.mlas_matmulnbits import level0_expected, level4_model
from test_bounds import seq

F = np.float32
U = 2.0 ** -24  # fp32 unit roundoff, half an ulp of 1
ACC = 2 ** 24 + 2 ** 12 + 1  # an int32 sum whose conversion ties down to 2^24 (1 + 2^-12)
T12 = 1 + 2.0 ** -12  # (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: a tie that rounds down to 1 + 2^-11
T13 = 1 + 2.0 ** -13  # (1 + 2^-11)(1 + 2^-13) = 1 + 2^-11 + 2^-13 + 2^-24: ties down as well
S3 = 5593771 * 2.0 ** -24  # 3 * S3 = 1 + 2^-12 + 2^-24 (fp32: 23 significant bits)


def _fr(v) -> Fraction:
    return Fraction(float(v))


def _check(computed, exact: Fraction, bound, model_exact=None) -> float:
    """error / bound, after checking the model's float64 exact value against the Fraction."""
    if model_exact is not None:
        assert abs(_fr(model_exact) - exact) <= Fraction(float(bound)) * Fraction(1, 10 ** 6)
    err = abs(_fr(computed) - exact)
    ratio = float(err / _fr(bound))
    assert ratio <= 1, ratio
    return ratio


# _dyn_quant_matmul_4bit

def test_dyn_quant_groupwise_bound_nearly_attained():
    """Block 0 contributes 97 * s0 = 1 + 2^-24, whose product ties down to 1; each of the other 127
    blocks adds 2^-24, half an ulp of the running sum, dropped by round-to-even. Activations are
    integers with max 255 (inverse scale 1, zero point -128), so the codes minus zp are x itself.
    error = 128 u against gamma_130 * sum |t|: ratio 128/130."""
    g, nb = 32, 128
    k = g * nb
    x = np.zeros((1, k), F)
    x[0, 0], x[0, 1] = 97, 255  # the 255 meets weight 0: it only fixes the range
    x[0, g::g] = 1
    codes = np.full((1, k), 8, np.int64)
    codes[0, ::g] = 9  # weight 1 where x is 97 or 1, 0 elsewhere
    scales = np.full((1, nb), U, F)
    scales[0, 0] = 172961 * 2.0 ** -24  # 97 * 172961 = 2^24 + 1
    y, exact, bound = dyn_quant_model(x, codes, scales, g)
    assert float(y[0, 0]) == 1.0
    ex = 97 * _fr(scales[0, 0]) + (nb - 1) * Fraction(U)
    assert _check(y[0, 0], ex, bound[0, 0], exact[0, 0]) > 0.98


def test_dyn_quant_channelwise_bound_nearly_attained():
    """One block (group = K): all three roundings gamma_3 allows, each a tie down. The int32 sum
    -(2^24 + 2^12 + 1) converts to -(2^24 + 2^12); times s = 2^-24 (1 + 2^-12) it ties to
    -(1 + 2^-11); times 1/inv = 1 + 2^-13 (the row max 255.0311279296875 gives that reciprocal) it
    ties again. error ~ 3 u |exact|."""
    k = 8228
    x = np.full((1, k), 255.0311279296875, F)
    x[0, -1] = 18
    codes = np.zeros((1, k), np.int64)  # weight -8 against activation 255: 8226 * -2040
    codes[0, -2:] = 7  # weight -1 against 255 and 18
    scales = np.array([[T12 * 2.0 ** -24]], F)
    y, exact, bound = dyn_quant_model(x, codes, scales, k)
    recip = Fraction(T13)
    ex = -ACC * _fr(scales[0, 0]) * recip
    assert float(y[0, 0]) == -(1 + 2.0 ** -11 + 2.0 ** -13)
    assert _check(y[0, 0], ex, bound[0, 0], exact[0, 0]) > 0.99


# MatMulNBits

def _qw(conv, codes, scales, zeros=None) -> QuantizedWeight:
    return QuantizedWeight(np.asarray(codes, np.int32), np.asarray(scales, F),
                           None if zeros is None else np.asarray(zeros, np.int32), conv.name)


def _below(target: float, w: np.float32) -> np.float32:
    """The largest fp32 t with t * w (exact) <= target."""
    t = F(target / float(w))
    while float(t) * float(w) > target:
        t = np.nextafter(t, F(0))
    return t


def test_matmulnbits_level0_bound_nearly_attained():
    """Weights formed as fl(q s) - fl(zp s) (one of the forms the bound covers), q = 15, zp = 1,
    s = 9587000 * 2^-23: 15 s and 14 s both lie just above 16 and both roundings lose almost half an
    ulp, 32/34.3 of the weight term u (|q s| + |zp s| + |w|). a[0] = 1 sets the fp32 sum to that
    weight; the other 31 products are just under half its ulp and are dropped in turn, which
    attains the accumulation term (94% of this bound; the weight term is tested alone below)."""
    conv = dataclasses.replace(get("ort.matmulnbits.int4.asym"), group_size=32)
    k = 32
    s = F(9587000 * 2.0 ** -23)
    qw = _qw(conv, np.full((1, k), 15), [[s]], [[1]])
    w = ((F(15) * s).astype(F) - (F(1) * s).astype(F)).astype(F)  # the kernel's weight
    a = np.full((1, k), _below(2.0 ** -20, w), F)  # 2^-20: half an ulp of w ~ 16
    a[0, 0] = 1
    y = seq((a * w).astype(F))[0]
    assert y == w
    exact, bound = level0_expected(a, qw, conv)
    ex = sum(_fr(v) for v in a[0]) * 14 * _fr(s)
    assert _check(y, ex, bound[0, 0], exact[0, 0]) > 0.95


def test_matmulnbits_level0_weight_term_nearly_attained():
    """K = 1 (a block padded past K), so the weight term is two thirds of the bound: the weight of the
    test above, w = 16 (1 + 2^-19) in fp32, times a = 1 + 2^-5 gives 16 (1 + 2^-5 + 2^-19 + 2^-24), a tie
    that rounds down. error ~ (32 + 16) u against (34.3 + 16.5) u; the weight term doubled gives 0.56."""
    conv = dataclasses.replace(get("ort.matmulnbits.int4.asym"), group_size=32)
    s = F(9587000 * 2.0 ** -23)
    qw = _qw(conv, [[15]], [[s]], [[1]])
    w = ((F(15) * s).astype(F) - (F(1) * s).astype(F)).astype(F)
    assert float(w) == 16 * (1 + 2.0 ** -19)
    a = np.array([[1 + 2.0 ** -5]], F)
    y = (a[0, 0] * w).astype(F)
    assert float(y) == 16 * (1 + 2.0 ** -5 + 2.0 ** -19)
    exact, bound = level0_expected(a, qw, conv)
    ex = _fr(a[0, 0]) * 14 * _fr(s)
    assert _check(y, ex, bound[0, 0], exact[0, 0]) > 0.93


def test_matmulnbits_level4_bound_nearly_attained():
    """The bound's height k + nb + 2 covers a kernel that converts each of up to k integer partials
    to fp32 and scales and sums them (its stated scope); such a kernel with one partial per element,
    summing sequentially, attains it. Block 0 holds the term 1 (activation code 1, weight code 1,
    both scales 1; its 127 meets weight code 0); every element of the other 127 blocks has code 127,
    weight code 1 and weight scale just under 2^-24 / 127: each term is under half an ulp of the sum 1
    and is dropped. Zero points 0 make the BlkSum and the zero-point-in-the-sum term sums equal.
    Ratio (k - 32) / (k + nb + 2) = 0.962. The modelled per-block FMA chain has nb + 1 roundings,
    about 1/32 of that height: the bound is loose for it by design (asserted within the bound)."""
    g, nb = 32, 128
    k = g * nb
    conv = dataclasses.replace(get("ort.matmulnbits.int4.asym"), group_size=g)
    a = np.full((1, k), 127, F)
    a[0, :g] = 0
    a[0, 0], a[0, 1] = 1, 127
    codes = np.ones((1, k), np.int64)
    codes[0, 1:g] = 0
    sb = np.full((1, nb), _below(U / 127, F(1)), F)
    sb[0, 0] = 1
    qw = _qw(conv, codes, sb, np.zeros((1, nb)))
    pred, exact, bound = level4_model(a, qw, conv)
    qa = dataclasses.replace(get("act.ort.matmulnbits.int8_blk"), group_size=g).quantize(a)
    assert qa.codes[0, 0] == 1 and (qa.codes[0, g:] == 127).all() and (qa.scales == 1).all()
    partial = (qa.codes[0].astype(np.int64) * codes[0]).astype(F)  # int32 partials, exact in fp32
    scale = np.repeat((qa.scales[0].astype(F) * sb[0]).astype(F), g)
    y = seq((partial * scale).astype(F)[None, :])[0]
    assert y == 1.0
    ex = 1 + (k - g) * 127 * _fr(sb[0, 1])
    assert _check(y, ex, bound[0, 0], exact[0, 0]) > 0.95
    assert _check(pred[0, 0], ex, bound[0, 0]) < 0.04  # the modelled chain: 2 roundings of the height


# int4pack / int8pack weight terms

def test_int4pack_weight_term_nearly_attained():
    """w = fl(fl(7 s) + z) (the two-rounding form): 7 s = 1 + 13 * 2^-24 ties down to 1 + 3 * 2^-22,
    and z = -1 + 2^-10 cancels it exactly, so |w| ~ 2^-10 is far below |(q - 8) s| and the weight term
    u (|(q - 8) s| + |w|) dominates the bound. The 32 equal products sum exactly. Ratio 0.97; the
    weight term doubled gives 0.49."""
    k = 32
    s = F(2396747 * 2.0 ** -24)  # 7 * 2396747 = 2^24 + 13
    z = F(-1 + 2.0 ** -10)
    x = np.ones((1, k), F)
    codes = np.full((1, k), 15, np.int64)
    w = ((F(7) * s).astype(F) + z).astype(F)
    assert float((F(7) * s).astype(F)) == 1 + 3 * 2.0 ** -22
    y = seq((x * w).astype(F))[0]
    exact, bound = int4_expected(x, codes, np.array([[s]], F), np.array([[z]], F), k, "fp32")
    ex = k * (7 * _fr(s) + _fr(z))
    assert _check(y, ex, bound[0, 0], exact[0, 0]) > 0.96


def test_int8pack_weight_term_nearly_attained():
    """K = 1, so the weight's rounding is half the bound: w = fl(3 s) with 3 s = 1 + 2^-12 + 2^-24
    (a tie down to 1 + 2^-12), then x w with x = 1 + 2^-12 ties down again (ATen's DEFAULT path,
    int8_predict). error ~ 2 u |exact| against ((1 + u)(1 + gamma_1) - 1) |exact|; the weight
    stage doubled gives 0.67."""
    x = np.array([[T12]], F)
    q = np.array([[3]], np.int8)
    scales = np.array([S3], F)
    y = int8_predict(x, q, scales, "fp32", "DEFAULT")
    assert float(y[0, 0]) == 1 + 2.0 ** -11
    exact, bound = int8_expected(x, q, scales, "fp32")
    ex = Fraction(T12) * 3 * _fr(S3)
    assert _check(y[0, 0], ex, bound[0, 0], exact[0, 0]) > 0.99


# linear_dynamic / qlinear_pointwise / MatMulIntegerToFloat: gamma_h (|acc s| + |b| + |y|)

def _acc_codes() -> tuple[np.ndarray, np.ndarray]:
    """u8 codes and s8 weights (1, 520) whose dot product is ACC."""
    qx = np.full((1, 520), 255, np.int64)
    qx[0, -1] = 18
    w = np.full((1, 520), 127, np.int8)
    w[0, -2], w[0, -1] = 23, 1
    assert int(qx[0] @ w[0].astype(np.int64)) == ACC
    return qx, w


def test_mlas_float_epilogue_attains_half_its_bound():
    """fp32(fp32(float(acc) * fp32(sa sb)) + bias): four roundings, each a tie down: float(ACC),
    sa sb = 0.75 * 4 S3 = 1 + 2^-12 + 2^-24, their product 2^24 (1 + 2^-11 + 2^-24), and the bias 1
    (half an ulp of 2^24 (1 + 2^-11)). error ~ 4 u |acc s|. The bound (gamma_4 + gamma_3(fp64))
    (|acc s| + |b| + |y|) counts |acc s| twice (|y| ~ |acc s|), so no input reaches half of it:
    3 roundings on the product and one on the sum are at most 3 u |acc s| + u |y| (+ the bias's
    own rounding, none here). Reached 0.4998; doubled 0.25."""
    acc = np.array([[ACC]], np.int32)
    sa, sb, b = F(0.75), F(4 * S3), np.array([1.0], F)
    pred, exact, bound = float_output(acc, sa, sb, b)
    assert float(pred[0, 0]) == 2 ** 24 + 2 ** 13
    ex = ACC * _fr(sa) * _fr(sb) + 1
    assert _check(pred[0, 0], ex, bound[0, 0], exact[0, 0]) > 0.499


def test_qlinear_pointwise_attains_half_its_bound():
    """Both oneDNN epilogues, each with four tie-down roundings (see the MLAS test): "onednn" scales by
    fp32(sa sb) = 1 + 2^-12, "onednn.brgemm" by sa = 1 + 2^-12 then sb = 1 + 2^-13. The bound
    gamma_4 (|acc s| + |b| + |y|) counts the product twice: below 0.5 for every input. Reached
    0.4998 and 0.4997; doubled 0.25."""
    qx, w = _acc_codes()
    b = np.array([1.0], F)
    for epilogue, sa, sb, y_expected in (("onednn", F(0.75), F(4 * S3), 2 ** 24 + 2 ** 13),
                                         ("onednn.brgemm", F(T12), F(T13), 2 ** 24 + 2 ** 13 + 2 ** 11)):
        pred, exact, bound = qlinear_pointwise_model(qx.astype(np.uint8), 0, sa, w, np.array([sb], F), b,
                                                     epilogue=epilogue)
        assert float(pred[0, 0]) == y_expected, epilogue
        ex = ACC * _fr(sa) * _fr(sb) + 1
        assert _check(pred[0, 0], ex, bound[0, 0], exact[0, 0]) > 0.499, epilogue


def test_linear_dynamic_bound_reached_as_far_as_it_goes():
    """gamma_8 (|acc s| + |b| + |y|) covers oneDNN's eight roundings (float(acc), two reciprocals per
    scale, their product, the multiply, the bias add) and counts the product twice, so error / bound
    stays below 8 u / 16 u = 0.5 for every input; fbgemm's epilogue fmaf(float(acc), fp32(sa sb), bias)
    has three roundings, at most 3/16. The activations (max 191.25: scale 0.75, zero point 0, codes 255
    and 18) and weights give acc = ACC. fbgemm, bias 0: float(acc), sa sb and the FMA each tie down,
    3/16 = 0.187 reached. onednn, bias 1: the scales' reciprocal round trips are exact here and the other
    four roundings tie down, 0.25 reached (the round trips lose an ulp only for scales near the top of a
    binade, where the product roundings lose about half). Doubled: 0.094 and 0.125."""
    qx, w = _acc_codes()
    x = np.where(qx == 255, F(191.25), F(13.5)).astype(F)
    sb = F(4 * S3)
    for engine, bias, n_ties, floor in (("fbgemm", None, 3, 0.187), ("onednn", np.array([1.0], F), 4, 0.249)):
        pred, exact, bound = linear_dynamic_model(x, w, sb, bias, engine=engine, reduce_range=False)
        b = 0 if bias is None else 1
        ex = ACC * Fraction(3, 4) * _fr(sb) + b
        assert abs(_fr(pred[0, 0]) - ex) > n_ties - 0.01, engine
        assert _check(pred[0, 0], ex, bound[0, 0], exact[0, 0]) > floor, engine


def test_linear_dynamic_code_slack_covers_each_quantizer_variant():
    """The activations `unpinned_codes` flags are exactly those where the quantizer variants seen on real hosts
    (fmaf(x, 1/s, zp), rne(fp32(x * (1/s))) + zp, a multiplier 2 ulps off 1/s) disagree or nearly do: every
    disagreement is flagged, and the flagged ones are few (each widens the bound by one code step)."""
    import oracle.activations  # noqa: F401  (registers the activation conventions)
    from oracle.gemm.aten_qlinear_dynamic import unpinned_codes
    from oracle.rounding import fmaf, rne

    conv = "act.torch.per_tensor.quint8"
    x = np.random.default_rng(7).standard_normal((64, 4096)).astype(np.float32)
    qa = get(conv).quantize(x)
    s, zp = np.float32(qa.scales[0, 0]), np.float32(qa.zeros[0, 0])
    inv = np.float32(1) / s
    near = unpinned_codes(x, s, zp)
    variants = [rne(fmaf(x, np.full_like(x, m), np.full_like(x, zp))) for m in (inv, np.nextafter(np.nextafter(
        inv, np.float32(np.inf)), np.float32(np.inf)))] + [rne((x * inv).astype(np.float32)) + zp]
    disagree = np.any([v != variants[0] for v in variants[1:]], axis=0)
    assert disagree.any() and not (disagree & ~near).any()
    assert near.sum() < 1e-3 * near.size
