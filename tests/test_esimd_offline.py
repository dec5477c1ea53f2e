"""The ESIMD INT4 GEMV path end to end, offline: export vectors, emulate the kernel, verify.

The model (oracle/gemm/esimd_gemv.py) is checked against a literal scalar transcription of
`GEMV_int4_kernel` (int4_GEMV.h) with exact rational arithmetic for every rounding, then used
as the vendor: its results are BIT_EXACT; two wrong kernels (swapped nibbles; the scale applied
after the group sum, accumulated in fp16) FAIL with TestFloat-style lines and exit status 1.
"""
from __future__ import annotations

import json
import os
from fractions import Fraction

import numpy as np
import pytest

from oracle.conventions import get
from oracle.gemm.esimd_gemv import esimd_gemv_int4, select_k_split
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded
from reports.cli import main
from reports.vectors import export, parse_shapes


def _f32(q: Fraction) -> Fraction:
    """Round a rational to the nearest float32, ties to even (normal range; enough here)."""
    f = np.float32(float(q))
    cands = [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - q), int(np.asarray(c).view(np.uint32)) & 1))
    return Fraction(float(best))


def _reduce(v: list[Fraction]) -> Fraction:
    """ESIMD reduce<float>(v, plus): add the two halves lane by lane, recursively (math.hpp reduce_single)."""
    while len(v) > 1:
        h = len(v) // 2
        v = [_f32(a + b) for a, b in zip(v[:h], v[h:])]
    return v[0]


def _scalar_kernel(x, weight, scales, ks: int, fused: bool) -> np.ndarray:
    """GEMV_int4_kernel<128, ks>, one work-group (row) and one thread at a time, every float op rounded."""
    n, k = weight.shape[0], x.shape[1]
    out = np.empty((1, n), dtype=np.float16)
    for row in range(n):
        parts = []
        for lid in range(ks):
            kp = k // ks
            acc_e, acc_o = [Fraction(0)] * 64, [Fraction(0)] * 64
            for k0 in range(lid * kp, lid * kp + kp, 128):
                gs = Fraction(float(scales[row, k0 // 128]))
                for j in range(64):
                    byte = int(weight[row, k0 // 2 + j])
                    we = _f32(Fraction((byte & 15)) - 8) * gs
                    wo = _f32(Fraction((byte >> 4) & 15) - 8) * gs
                    pe = Fraction(float(x[0, k0 + 2 * j])) * _f32(we)
                    po = Fraction(float(x[0, k0 + 2 * j + 1])) * _f32(wo)
                    acc_e[j] = _f32(acc_e[j] + pe) if fused else _f32(acc_e[j] + _f32(pe))
                    acc_o[j] = _f32(acc_o[j] + po) if fused else _f32(acc_o[j] + _f32(po))
            parts.append(_f32(_reduce(acc_e) + _reduce(acc_o)))
        total = parts[0] if ks == 1 else _reduce(parts)
        out[0, row] = np.float16(np.float32(float(total)))
    return out


def _case(n: int, k: int, seed: int, scale: float = 1.0):
    conv = get("esimd.int4_gemv")
    rng = np.random.default_rng(seed)
    qw = conv.quantize((rng.standard_normal((n, k)) * scale).astype(np.float32))
    p = conv.pack(qw)
    return conv, qw, p, (rng.standard_normal((1, k)) * scale).astype(np.float16)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("ks", [1, 2])
def test_model_equals_scalar_transcription(ks, fused):
    _, _, p, x = _case(3, 256, 11 + ks)
    want = _scalar_kernel(x, p["weight"], p["scales"], ks, fused)
    got = esimd_gemv_int4(x, p["weight"], p["scales"], k_split=ks, fused=fused)
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16))


def test_k_split_selection_follows_select_vl_ks_int4():
    # branches of select_vl_ks_int4: N <= 128 and K >= 2048 -> 8; N <= 512 -> 4; else 1; halved to whole groups
    assert [select_k_split(n, k) for n, k in [(64, 4096), (300, 4096), (1024, 4096), (64, 1024), (64, 2176)]] \
        == [8, 4, 1, 1, 1]


@pytest.mark.parametrize("nk", [(64, 4096), (300, 2048), (33, 384)])
def test_model_is_within_the_declared_lanes_bound(nk):
    """The bound the ESIMD vectors declare (128 lanes) holds for the model, fused or not, at every K_SPLIT."""
    n, k = nk
    conv, qw, p, x = _case(n, k, n + k, scale=3.0)
    exact, bound = wxa16_exact(x, conv.dequantize(qw), acc="fp32", out="fp16", order="lanes", lanes=128)
    for fused in (True, False):
        for ks in {1, select_k_split(n, k)}:
            y = esimd_gemv_int4(x, p["weight"], p["scales"], k_split=ks, fused=fused)
            r = compare_bounded(exact, bound, y, out_dtype="fp16", convention="esimd.int4_gemv")
            assert r.status == "BOUNDED", r.message()


def test_model_rejects_shapes_the_kernel_cannot_run():
    _, _, p, x = _case(2, 256, 0)
    with pytest.raises(ValueError, match="K % 128"):
        esimd_gemv_int4(x[:, :200], p["weight"], p["scales"])
    with pytest.raises(ValueError, match="K_SPLIT"):
        esimd_gemv_int4(x, p["weight"], p["scales"], k_split=4)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    d = tmp_path_factory.mktemp("esimd") / "vec"
    export("esimd.int4_gemv", parse_shapes("1x1024x64,1x2048x96"), 5, str(d), raw=True)
    return str(d)


def test_end_to_end_bit_exact_gguf_and_raw(vectors, tmp_path, capsys):
    res = str(tmp_path / "res.gguf")
    assert main(["emulate", vectors, "--model", "esimd", "--out", res]) == 0
    assert main(["verify", vectors, res, "--kernel", "esimd.int4_gemv", "--out", str(tmp_path / "cert")]) == 0
    out = capsys.readouterr().out
    assert out.count("BIT_EXACT") >= 2 and "PASSED" in out
    cert = json.load(open(tmp_path / "cert" / "certificate.json"))
    cases = cert["runs"][0]["cases"]
    assert [c["status"] for c in cases] == ["BIT_EXACT", "BIT_EXACT"]
    manifest = json.load(open(os.path.join(vectors, "manifest.json")))
    assert cert["vectors"][0]["files"] == manifest["files"]
    assert all(c["golden"]["sha256"] == manifest["files"][c["golden"]["file"]] for c in cases)
    assert sorted(os.listdir(tmp_path / "cert")) == ["certificate.json", "junit.xml", "report.html", "summary.md"]
    raw = str(tmp_path / "raw")
    assert main(["emulate", vectors, "--model", "esimd-unfused", "--out", raw, "--raw"]) == 0
    assert main(["verify", vectors, raw]) == 0  # unfused rounds to the same fp16 here, else it would be BOUNDED


@pytest.mark.parametrize("model", ["swapped-nibbles", "scale-after-sum-fp16"])
def test_wrong_kernels_fail_with_a_testfloat_report(vectors, tmp_path, capsys, model):
    res = str(tmp_path / "res.gguf")
    assert main(["emulate", vectors, "--model", model, "--out", res]) == 0
    capsys.readouterr()
    assert main(["verify", vectors, res, "--kernel", "esimd.int4_gemv", "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "FAILED" in out
    assert "observed 0x" in out and "expected 0x" in out and "inputs: x[0, 0:4]=" in out and "model 0x" in out
    cert = json.load(open(tmp_path / "c" / "certificate.json"))
    assert cert["summary"]["verdict"] == "FAILED"
    assert all(c["status"] == "FAIL" and "outside the derived bound" in c["detail"] for c in cert["runs"][0]["cases"])


def test_export_rejects_shapes_the_esimd_kernel_cannot_run(tmp_path, capsys):
    assert main(["export", "--convention", "esimd.int4_gemv", "--shapes", "2x1024x64", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "M must be 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()
