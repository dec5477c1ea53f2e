"""torch.ops.onednn.qlinear_pointwise (fp32 output, no post-op) bit for bit
(oracle.gemm.aten_qlinear_dynamic.qlinear_pointwise_model): float(acc) * fp32(sa * sb[n]) + bias
on gemm:jit and AMX, (float(acc) * sa) * sb[n] + bias on the other brg_matmul kernels, chosen
from the implementation oneDNN reports (onednn_epilogue).

Weights in [-64, 63] keep the u8 x s8 pair sums inside int16, so the exact int32 sums must hold on
every path; full-range weights are checked against the int16-pair sums where no VNNI ran
(oneDNN's vpmaddubsw path), as for linear_dynamic. The output is held to the exact value of the
modelled integer sum within the epilogue's bound, BIT_EXACT where it equals the prediction; on
gemm:jit, whose epilogue is pinned, the int16-pair case must equal it byte for byte.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import calls
from oracle.gemm.aten_qlinear_dynamic import onednn_epilogue, qlinear_pointwise_model
from oracle.verdict import compare_bounded, compare_exact

KERNEL = "torch.onednn.qlinear_pointwise"
MODULE = "kernels.pytorch.qlinear_pointwise"
CONV = "w8a8 u8 (zero point) x s8 per-channel, acc*(sa*sb)+bias"
pytestmark = pytest.mark.kernel(KERNEL)


@pytest.mark.parametrize("wmax", [63, 127], ids=["w63", "w127"])
@pytest.mark.parametrize("mkn", [(1, 64, 16), (5, 300, 33), (32, 1024, 64)], ids=["gemv", "k300", "k1024"])
def test_qlinear_pointwise(qsession, judge, wmax: int, mkn) -> None:
    m, k, n = mkn
    rng = np.random.default_rng(m + k + n + wmax)
    qx = rng.integers(0, 256, (m, k)).astype(np.uint8)
    w = rng.integers(-wmax - 1, wmax + 1, (n, k)).astype(np.int8)
    sa, zp = np.float32(0.02), 100
    sb = (rng.random(n) * 0.01 + 1e-3).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    calls.require_available(qsession, judge, KERNEL, MODULE, CONV)
    what = f"qlinear_pointwise fp32, weights in [-{wmax + 1}, {wmax}]"
    run = calls.run_observed(qsession, judge, KERNEL, MODULE, "qlinear_pointwise", qx, sa, zp, w, sb, bias,
                             convention=CONV, what=what, shape=(m, k, n))
    ranks = run.onednn.impl_ranks().values()
    line = run.onednn.isa_line.lower()
    vnni = any(r == 1.5 or r >= 3 for r in ranks) if ranks else ("dl boost" in line or "amx" in line)
    pairs = wmax > 63 and not vnni
    epilogue = onednn_epilogue(run.onednn.impls)
    pred, exact, bound = qlinear_pointwise_model(qx, zp, sa, w, sb, bias, int16_pairs=pairs, epilogue=epilogue)
    y = run.outcome.value
    conv = f"{CONV} x vpmaddubsw int16 pairs" if pairs else CONV
    if pairs and "matmul:gemm:jit" in run.onednn.impls:
        res = compare_exact(pred, y, convention=conv, what=what)
    else:
        res = compare_bounded(exact, bound, y, out_dtype="fp32", convention=conv, predicted=pred, what=what)
    judge(res, kernel=KERNEL, shape=(m, k, n), observed_isa=run.isa(), int16_pairs=pairs, epilogue=epilogue)
