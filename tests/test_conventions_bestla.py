"""BesTLA storage and dequantization against the BesTLA shipped in auto-round-lib (ARK).

ARK exposes no float quantizer (only `repack_quantized_weight` of integer codes and
`unpack_weight`), so the quantizers stay source reading; what the library can confirm is the
dequantization rule the conventions use: signed codes q in [-8, 7] (nibble q + 8) times the
fp32 scale, minus a signed zero point when asymmetric. ARK runs in a worker process because
some of its paths abort (NUMERICS.md).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import oracle.conventions as conventions


def ark_unpack(codes_kn: np.ndarray, scales: np.ndarray, zps: np.ndarray, group: int, asym: bool) -> np.ndarray:
    """Repack signed int4 codes [K, N] with fp32 scales [K/g, N] and read them back as float32 [N, K]."""
    import torch
    import auto_round_kernel as ark

    k, n = codes_kn.shape
    blob = ark.repack_quantized_weight(torch.from_numpy(codes_kn), torch.from_numpy(scales), torch.from_numpy(zps),
                                       group, "fp32", "int4", "fp32", asym)
    return ark.unpack_weight(blob, torch.float32, n, k, group, "fp32", "int4", "fp32", asym).contiguous().numpy()


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
