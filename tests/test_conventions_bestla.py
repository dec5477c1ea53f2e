"""BesTLA storage and dequantization against the BesTLA shipped in auto-round-lib (ARK).

ARK exposes no float quantizer (only `repack_quantized_weight` of integer codes and
`unpack_weight`), so the quantizers stay source reading; what the library can confirm is the
dequantization rule the conventions use: signed codes q in [-8, 7] (nibble q + 8) times the
fp32 scale, minus a signed zero point when asymmetric, and for the asymmetric int4/int8
conventions the storage of their own codes and signed zero points. Their quantizer arithmetic
is checked against a scalar line-by-line port of the cited kernel_ref.h source (which pins the
vectorization, not the source reading). ARK runs in a worker process because some of its paths
abort (NUMERICS.md).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import oracle.conventions as conventions


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

    conv = conventions.get("bestla.neural_speed.int4_fullrange.sym")
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


ASYM = {"bestla.neural_speed.int4_fullrange.asym": "int4", "bestla.neural_speed.int8.asym": "int8"}


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
