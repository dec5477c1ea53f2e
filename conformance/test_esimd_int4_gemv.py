"""ESIMD INT4 GEMV (XPU) against the oracle: weights in `esimd.int4_gemv`, value and bound from
oracle.gemm.wxa16 (fp16 input and output, fp32 accumulation in an unknown lane order). Runs only
where torch.xpu and the op exist; elsewhere it is UNAVAILABLE with the adapter's reason.
"""
from __future__ import annotations

import numpy as np
import pytest

from oracle.conventions import get
from oracle.gemm.wxa16 import wxa16_exact
from conformance import calls
from oracle.verdict import compare_bounded

pytestmark = pytest.mark.kernel("esimd.int4_gemv")
MOD = "kernels.esimd.gemv"
CONV = "esimd.int4_gemv"


@pytest.mark.parametrize("nk", [(64, 1024), (256, 4096)], ids=["small", "k4096"])
def test_int4_gemv(qsession, judge, nk):
    n, k = nk
    calls.require_available(qsession, judge, "esimd.int4_gemv", MOD, CONV, shape=(1, k, n))
    rng = np.random.default_rng(n)
    conv = get(CONV)
    qw = conv.quantize(rng.standard_normal((n, k)).astype(np.float32))
    packed = conv.pack(qw)
    x = rng.standard_normal((1, k)).astype(np.float16)
    y = calls.run(qsession, judge, "esimd.int4_gemv", MOD, "gemv_int4", x, packed["weight"], packed["scales"],
                  convention=CONV, what="esimd_gemv_int4", shape=(1, k, n))
    exact, bound = wxa16_exact(x, conv.dequantize(qw), acc="fp32", out="fp16")
    judge(compare_bounded(exact, bound, y, out_dtype="fp16", convention=CONV, block_size=128,
                          what="esimd_gemv_int4 fp16"), kernel="esimd.int4_gemv", shape=(1, k, n))
