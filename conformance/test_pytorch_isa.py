"""The ISA cap took effect: each PyTorch kernel runs once and what ran is compared with --isa.

ATen's capability must equal the ATEN_CPU_CAPABILITY knob of the requested level, and no oneDNN
ISA line or implementation may exceed ONEDNN_MAX_CPU_ISA (kernels/pytorch/evidence.py). A cap
that did not take effect fails here, so a run's verdicts cannot be credited to the wrong ISA.
fbgemm (the x86 engine's linear path too) and qnnpack have no knob: under a cap below the host's level they are reported, not run.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernels.isa import levels_on_host
from kernels.pytorch import evidence

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 64)).astype(np.float32)
W8 = RNG.integers(-128, 128, (16, 64)).astype(np.int8)
CALLS = {  # kernel -> (module, function, args)
    "torch.int_mm": ("kernels.pytorch.int_mm", "int_mm", (W8[:3], np.ascontiguousarray(W8.T))),
    "torch.weight_int8pack_mm": ("kernels.pytorch.weight_int8pack_mm", "int8pack_mm", (X, W8, np.ones(16, np.float32))),
    "torch.weight_int4pack_mm": ("kernels.pytorch.weight_int4pack_mm", "int4pack_mm",
                                 (X, np.full((16, 64), 8, np.int32), np.ones((2, 16, 2), np.float32), 32)),
    "torch.dyn_quant_matmul_4bit": ("kernels.pytorch.dyn_quant_matmul_4bit", "dyn_quant_matmul",
                                    (X, np.full((16, 32), 0x88, np.uint8), np.ones((16, 2), np.float32), 32)),
    "torch.onednn.qlinear_pointwise": ("kernels.pytorch.qlinear_pointwise", "qlinear_pointwise",
                                       (RNG.integers(0, 256, (3, 64)).astype(np.uint8), 0.02, 100, W8,
                                        np.ones(16, np.float32), None)),
    **{f"torch.quantized.linear_dynamic.{e}": ("kernels.pytorch.linear_dynamic", "linear_dynamic",
                                               (e, X, W8, np.float32(0.01), None))
       for e in ("fbgemm", "x86", "onednn", "qnnpack")},
}
NO_KNOB = {"torch.quantized.linear_dynamic.fbgemm", "torch.quantized.linear_dynamic.x86",  # x86 uses fbgemm for linear
           "torch.quantized.linear_dynamic.qnnpack"}


@pytest.mark.parametrize("kernel", [pytest.param(k, marks=pytest.mark.kernel(k)) for k in sorted(CALLS)])
def test_isa_cap_took_effect(qsession, kernel: str) -> None:
    module, func, args = CALLS[kernel]
    avail = qsession.worker.call(module, "available", *(args[:1] if "linear_dynamic" in kernel else ()))
    if not avail.ok or not avail.value["ok"]:
        pytest.skip(f"{kernel} unavailable: {avail.value['reason'] if avail.ok else avail.detail}")
    top = (levels_on_host() or ["scalar"])[-1]
    if kernel in NO_KNOB and qsession.isa not in ("native", top):
        pytest.skip(f"{kernel} has no ISA knob: it dispatches on cpuid ({top} here), so --isa {qsession.isa} cannot cap it")
    run = evidence.run(qsession.worker, module, func, *args)
    assert run.outcome.ok, f"{kernel} did not run: {run.outcome.status} {run.outcome.detail[:500]}"
    assert run.capability, f"observe() returned nothing for {kernel}"
    problems = evidence.cap_problems(qsession.isa, run.capability, run.onednn)
    assert not problems, f"--isa {qsession.isa} did not take effect for {kernel}: " + "; ".join(problems) + \
        f" (observed {run.isa()})"
