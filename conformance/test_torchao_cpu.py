"""torchao's CPU kernels: DA8W4 (where a build has it) and int_scaled_matmul, judged by the oracle.

DA8W4 runs where torchao's CPU kernel is built (pytorch/ao from source, or
benchmarks/build_torchao_cpu.py with QORACLE_TORCHAO_CPU_LIB naming its library) and the CPU has
what that build needs; otherwise it is UNAVAILABLE with the reason.

int_matmul, int_scaled_matmul and DA8W4 as torchao's linear calls it (float x quantized per token by
torchao's own quantizer, no bias, output in x's dtype; semantics da8w4.asym.torchao_build, every case
family and layout of x) are judged by conformance/test_specs.py (their KernelSpecs in
kernels/torchao/__init__.py). What stays here is what that table cannot say: the prepacked
compensation, a bias, symmetric int8 activations, all-8 weight zero points, and given codes and
zero points at M values that pick the AVX512 build's paths.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import calls
from oracle.gemm.da8w4 import block_compensation, da8w4_exact, da8w4_linear
from oracle.verdict import compare_bounded, compare_exact

MOD = "kernels.torchao.ao"


DA8W4 = "torchao.da8w4_linear_cpu"
# (activations, M, K, N, group_size, out, bias, weight zero points). M picks the kernel's path on
# an AVX512 build where cpublas::could_pack (AMX): M <= 4 the small-M VNNI path, else brgemm;
# M = 66 is one 64-row block (brgemm) and a 2-row tail (small-M); M = 80 a 16-row tail whose zero
# points all differ from rows 0..15 (a tile-local row index reads theirs). Without AMX (or on the
# portable build) every M runs the scalar path. group 256 has two K blocks per group.
# The spec (da8w4_view) covers asymmetric activations without bias at M 1..33; each case kept here says why.
DA8W4_CASES = [
    ("asym", 1, 256, 64, 32, "bf16", True, "asym"),  # bias, and M = 1 (the small-M path on AMX builds)
    ("asym", 4, 256, 64, 128, "fp16", True, "asym"),  # bias, and M = 4, the small-M path's last M
    ("asym", 17, 512, 64, 256, "bf16", True, "asym"),  # bias with two K blocks per group
    ("asym", 66, 256, 32, 32, "fp32", True, "asym"),  # one brgemm block and a small-M tail on AMX builds
    ("asym", 8, 256, 32, 64, "fp32", True, "sym"),  # every weight zero point 8 (the spec draws them 0..15 per group)
    ("sym", 2, 256, 32, 32, "fp32", True, "asym"),  # symmetric int8 activations: not in the spec's semantics
    ("sym", 20, 512, 64, 128, "bf16", False, "asym"),  # symmetric int8 activations, no bias
    ("asym", 80, 256, 32, 64, "bf16", True, "asym"),  # a 16-row tail whose zero points differ from rows 0..15
]


@pytest.mark.kernel(DA8W4)
@pytest.mark.parametrize("case", DA8W4_CASES, ids=lambda c: "-".join(map(str, c)))
def test_da8w4_linear_cpu(qsession, judge, case):
    """Prepack, then the linear: the compensation byte for byte against oracle.gemm.da8w4's
    block sum of (w - zp), the output bit-exact against its model for the build's epilogue
    ('mul_add' portable, 'fma' where the build fuses) inside da8w4_exact's bound."""
    act, M, K, N, gs, out, with_bias, wzp = case
    shape = (M, K, N)
    rng = np.random.default_rng(M * 1000 + K + N + gs)
    if act == "asym":
        a_q = rng.integers(0, 256, (M, K), dtype=np.uint8)
        a_zp = rng.integers(0, 256, M).astype(np.int32)
    else:  # torchao's symmetric per-token quantizer: codes in [-127, 127], no zero point
        a_q = rng.integers(-127, 128, (M, K), dtype=np.int8)
        a_zp = np.zeros(M, np.int32)
    a_scale = (rng.random(M) * 0.05 + 1e-3).astype(np.float32)
    w_q = rng.integers(0, 16, (N, K), dtype=np.uint8)
    G = K // gs
    w_zp = np.full((N, G), 8, np.int8) if wzp == "sym" else rng.integers(0, 16, (N, G)).astype(np.int8)
    w_scale = (rng.random((N, G)) * 0.02 + 1e-4).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32) if with_bias else None

    conv = f"torchao.da8w4 {act} act, {wzp} weights, group {gs}"
    calls.require_available(qsession, judge, DA8W4, MOD, conv, check="available_da8w4", shape=shape)
    av = qsession.worker.call(MOD, "available_da8w4").value
    r = calls.run(qsession, judge, DA8W4, MOD, "da8w4_linear_cpu", a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, out,
                  convention=conv, shape=shape)
    comp = block_compensation(w_q, w_zp, gs).reshape(N // 32, 32, -1).transpose(0, 2, 1).astype(np.int32)
    judge(compare_exact(comp, r["compensation"], convention=conv, what="prepacked compensation sum(w - zp)"),
          kernel=DA8W4, shape=shape)
    exact, bound = da8w4_exact(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out=out)
    epilogue = av.get("epilogue", "")
    pred = (da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out=out, epilogue=epilogue)
            if epilogue else None)
    judge(compare_bounded(exact, bound, r["y"], out_dtype=out, convention=f"{conv}, epilogue {epilogue or 'unknown'}",
                          predicted=pred, require_prediction=pred is not None, what=f"da8w4_linear_cpu {out}"),
          kernel=DA8W4, shape=shape)

